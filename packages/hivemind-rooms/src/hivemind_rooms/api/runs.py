"""Run observation routes and the visibility rules of run payloads.

An owner sees every run of their tenant, but for runs a participant started
in a ``querier_only`` room the payload (output, error, usage, artifacts) is
blanked and ``payload_redacted`` is set. An invite sees only runs it issued.

Artifacts are sealed at rest under the room key (:mod:`hivemind_rooms.pipeline`):
their names are listed with the run, but a download opens the file only when
the room key is open in this process and the caller's own credential opens
its wrap (503 ``room_sealed`` otherwise, as for other room data after a
restart). A file that fails to authenticate is refused (409) with a fixed
message; its bytes are never served.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..pipeline import read_artifact, sealed_artifact_names
from ..tenants import Caller
from ..vault import KeyScope, VaultDecryptError
from . import _room_core as core
from ._auth import require
from ._errors import NO_STORE, ApiError
from ._query import int_param
from ._seal import room_key

__all__ = ["routes", "run_metadata", "run_object"]

_PAYLOAD = ("output", "error", "usage_json")
_ARTIFACT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def run_metadata(row: dict[str, Any]) -> dict[str, Any]:
    """A run without prompt, payload or attestation (the admin view)."""
    hidden = {"prompt", "attestation", *_PAYLOAD}
    return {k: v for k, v in row.items() if k not in hidden}


def run_object(
    row: dict[str, Any], caller: Caller, artifacts: list[str] | None = None
) -> dict[str, Any]:
    """The run object a caller may see (``artifacts``: stored artifact names)."""
    run = dict(row)
    run["artifacts_enabled"] = bool(run["artifacts_enabled"])
    run["attestation"] = json.loads(run["attestation"]) if run["attestation"] else None
    redact = (
        caller.role == "owner"
        and run["issuer_token_id"] is not None
        and run["output_visibility"] == "querier_only"
    )
    if redact:
        for key in _PAYLOAD:
            run[key] = None
    run["usage"] = json.loads(run["usage_json"]) if run.get("usage_json") else None
    run["artifacts"] = [] if redact else list(artifacts or [])
    run["payload_redacted"] = redact
    return run


def _visible(caller: Caller, row: dict[str, Any], payer: str | None = None) -> bool:
    if caller.role == "owner":
        return True
    if caller.role == "query":
        return row["issuer_token_id"] == caller.token_id
    # a share link is held by many: only runs of its room paid by the presented payer
    return (
        payer is not None and row["room_id"] == caller.room_id and (row["payer_tenant_id"] == payer)
    )


def _payer(request: Request) -> str | None:
    key = request.headers.get("x-hivemind-api-key") or request.headers.get("x-hivemind-payer-key")
    if not key:
        return None
    found = request.app.state.services.tenants.payer(key)
    if found is None:
        raise ApiError(401, "Unauthorized")
    return str(found["tenant_id"])


async def list_runs(request: Request) -> JSONResponse:
    """``GET /v1/runs``."""
    caller = require(request, "owner", "query", "share")
    limit = int_param(request, "limit", 20, 1, 100)
    store = request.app.state.services.storage.tenant(caller.tenant_id)
    token = request.query_params.get("token_id")
    if caller.role == "share":
        payer = _payer(request)
        rows = [r for r in store.list_runs(1000) if _visible(caller, r, payer)][:limit]
    elif caller.role == "query":
        rows = store.list_runs(limit, issuer_token_id=caller.token_id)
    else:
        if token is not None and not re.fullmatch(r"[0-9a-f]{6,12}", token):
            raise ApiError(422, "token_id must be 6 to 12 lowercase hex characters")
        rows = store.list_runs(limit if token is None else 1000)
        if token is not None:
            rows = [r for r in rows if (r["issuer_token_id"] or "").startswith(token)][:limit]
    return JSONResponse([run_object(r, caller) for r in rows], headers=NO_STORE)


async def get_run(request: Request) -> JSONResponse:
    """``GET /v1/runs/{run_id}``."""
    caller = require(request, "owner", "query", "share")
    store = request.app.state.services.storage.tenant(caller.tenant_id)
    row = store.get_run(str(request.path_params["run_id"]))
    if row is None or not _visible(caller, row, _payer(request)):
        raise ApiError(404, "run not found")
    names = await run_in_threadpool(_artifact_names, request, caller.tenant_id, row["run_id"])
    run = run_object(row, caller, names)
    engine = getattr(request.app.state, "runs", None)
    run["progress"] = engine.progress(row["run_id"]) if engine is not None else None
    return JSONResponse(run, headers=NO_STORE)


def _artifacts_root(request: Request) -> Path:
    return Path(request.app.state.services.settings.data_dir) / "artifacts"


def _artifact_names(request: Request, tenant_id: str, run_id: str) -> list[str]:
    return sealed_artifact_names(_artifacts_root(request), tenant_id, run_id)


async def _open_artifact(
    request: Request, caller: Caller, row: dict[str, Any], filename: str
) -> bytes:
    """The opened artifact (404 when absent, 503 while sealed, 409 when damaged)."""
    root = _artifacts_root(request)
    if filename not in await run_in_threadpool(
        sealed_artifact_names, root, caller.tenant_id, row["run_id"]
    ):
        raise ApiError(404, "artifact not found")
    services = request.app.state.services
    key = await room_key(services, caller, core.load_room(services, caller, row["room_id"]))
    scope = KeyScope.room(caller.tenant_id, row["room_id"])
    try:
        content = await run_in_threadpool(read_artifact, root, key, scope, row["run_id"], filename)
    except VaultDecryptError:
        raise ApiError(
            409, "the stored artifact failed authentication", error="artifact_unreadable"
        ) from None
    if content is None:
        raise ApiError(404, "artifact not found")
    return content


async def artifact(request: Request) -> Response:
    """``GET /v1/runs/{run_id}/artifacts/{filename}``: one artifact, same visibility as the run.

    Raises:
        ApiError: 404 unknown run or artifact, 503 room key not open (or the
            caller's credential does not open it), 409 stored file damaged.
    """
    caller = require(request, "owner", "query", "share")
    filename = str(request.path_params["filename"])
    if not _ARTIFACT_NAME.fullmatch(filename):
        raise ApiError(400, "invalid artifact filename")
    store = request.app.state.services.storage.tenant(caller.tenant_id)
    row = store.get_run(str(request.path_params["run_id"]))
    if row is None or not _visible(caller, row, _payer(request)):
        raise ApiError(404, "run not found")
    if run_object(row, caller)["payload_redacted"]:
        raise ApiError(404, "artifact not found")
    content = await _open_artifact(request, caller, row, filename)
    retention = request.app.state.runs.config.artifact_retention_s
    headers = {
        **NO_STORE,
        "Cache-Control": "no-cache, no-store",
        "X-Retention-Seconds": str(retention),
        "Content-Disposition": f'attachment; filename="{filename}"',
    }
    return Response(content, media_type="application/octet-stream", headers=headers)


routes = [
    Route("/v1/runs", list_runs, methods=["GET"]),
    Route("/v1/runs/{run_id}", get_run, methods=["GET"]),
    Route("/v1/runs/{run_id}/artifacts/{filename}", artifact, methods=["GET"]),
]
