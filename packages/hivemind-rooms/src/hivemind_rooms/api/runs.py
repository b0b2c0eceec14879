"""Run observation routes and the visibility rules of run payloads.

An owner sees every run of their tenant, but for runs a participant started
in a ``querier_only`` room the payload (output, error, usage, artifacts) is
blanked and ``payload_redacted`` is set. An invite sees only runs it issued.

A run's prompt, output and error are stored sealed under the room key
(:mod:`hivemind_rooms.pipeline`). ``GET /v1/runs/{id}`` opens them only while
the room key is open in this process and the caller's own credential opens
its wrap: otherwise 503 ``room_sealed``, as for vault reads after a restart
(a revoked room's runs keep their metadata; their payload reads null with
``payload_sealed`` set, for no credential can open it again). ``GET /v1/runs``
answers in any case: runs whose room is not open for the caller come back
with their sealed fields null and ``payload_sealed`` set.

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

from ..pipeline import open_run_text, read_artifact, sealed_artifact_names, sealed_fields
from ..tenants import Caller
from ..vault import KeyScope, SecretKey, VaultDecryptError
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
    redact = _redacted(run, caller)
    if redact:
        for key in _PAYLOAD:
            run[key] = None
    run["usage"] = json.loads(run["usage_json"]) if run.get("usage_json") else None
    run["artifacts"] = [] if redact else list(artifacts or [])
    run["payload_redacted"] = redact
    run["payload_sealed"] = bool(run.get("payload_sealed", False))
    return run


def _redacted(row: dict[str, Any], caller: Caller) -> bool:
    return (
        caller.role == "owner"
        and row["issuer_token_id"] is not None
        and row["output_visibility"] == "querier_only"
    )


class _Keys:
    """Room keys opened for one request (each room once)."""

    def __init__(self, request: Request, caller: Caller) -> None:
        self.services, self.caller = request.app.state.services, caller
        self._keys: dict[str, SecretKey | None] = {}

    async def key(self, room_id: str, *, strict: bool) -> SecretKey | None:
        """The room key for this caller; None when it cannot be opened.

        Raises:
            ApiError: 503 (strict only) when the room is live but not open
                for this caller.
        """
        if room_id not in self._keys:
            try:
                room = core.load_room(self.services, self.caller, room_id)
                if room["revoked_at"] is not None:  # its key is gone for good
                    self._keys[room_id] = None
                else:
                    self._keys[room_id] = await room_key(self.services, self.caller, room)
            except ApiError as exc:
                if strict and exc.status == 503:
                    raise
                self._keys[room_id] = None
        return self._keys[room_id]


async def _opened(
    keys: _Keys, caller: Caller, row: dict[str, Any], *, strict: bool
) -> dict[str, Any]:
    """The row with its sealed fields opened (or nulled with ``payload_sealed``).

    Raises:
        ApiError: (strict only) 503 room not open for the caller, 409 a
            stored field failed authentication.
    """
    names = sealed_fields(row)
    if _redacted(row, caller):  # output and error are blanked anyway
        names = [n for n in names if n == "prompt"]
    out = dict(row)
    for name in set(sealed_fields(row)) - set(names):
        out[name] = None
    if not names:
        return out
    key = await keys.key(str(row["room_id"]), strict=strict)
    scope = KeyScope.room(caller.tenant_id, str(row["room_id"]))
    for name in names:
        try:
            if key is None:
                raise VaultDecryptError()
            out[name] = open_run_text(key, scope, row["run_id"], name, row[name])
        except VaultDecryptError:
            if strict and key is not None:
                raise ApiError(
                    409, "the stored run failed authentication", error="run_unreadable"
                ) from None
            out[name], out["payload_sealed"] = None, True
    return out


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
    """``GET /v1/runs``: visible runs, newest first (sealed rooms: ``payload_sealed``)."""
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
    keys = _Keys(request, caller)
    opened = [await _opened(keys, caller, r, strict=False) for r in rows]
    return JSONResponse([run_object(r, caller) for r in opened], headers=NO_STORE)


async def get_run(request: Request) -> JSONResponse:
    """``GET /v1/runs/{run_id}``: the run, its sealed fields opened for the caller.

    Raises:
        ApiError: 404 unknown or not visible, 503 room key not open for the
            caller, 409 a stored field failed authentication.
    """
    caller = require(request, "owner", "query", "share")
    store = request.app.state.services.storage.tenant(caller.tenant_id)
    row = store.get_run(str(request.path_params["run_id"]))
    if row is None or not _visible(caller, row, _payer(request)):
        raise ApiError(404, "run not found")
    opened = await _opened(_Keys(request, caller), caller, row, strict=True)
    names = await run_in_threadpool(_artifact_names, request, caller.tenant_id, row["run_id"])
    run = run_object(opened, caller, names)
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
