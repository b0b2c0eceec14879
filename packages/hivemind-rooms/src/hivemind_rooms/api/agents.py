"""Agent routes: upload, listing, inspection, files and attestation digests."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import credentials
from ..agents_registry import (
    AGENT_TYPES,
    AgentSpec,
    agent_attestation,
    agent_config,
    agent_file_content,
    agent_files_view,
    read_archive,
    register_agent,
)
from ..attestation import AttestationBusy
from ..storage import TenantStoreProtocol
from ..tenants import Caller
from ..vault import KeyScope, seal_blob
from . import _room_core as core
from ._auth import require
from ._errors import NO_STORE, ApiError
from ._seal import tenant_key

__all__ = ["attest_agent", "attestation_bundle", "routes"]

_FORM_FIELDS = 20
_FORM_SLACK = 64 * 1024


async def attestation_bundle(services: Any, request: Request) -> dict[str, Any]:
    """The attestation bundle, fresh for a client ``?nonce=`` (hex, 16-32 bytes).

    Raises:
        ApiError: 400 malformed nonce; 429 too many fresh quotes.
    """
    service = services.attestation
    if service is None:
        return {"ready": False, "reason": "no attestation provider is configured"}
    raw = request.query_params.get("nonce")
    try:
        nonce = bytes.fromhex(raw) if raw else None
        return dict(await service.bundle(nonce))
    except AttestationBusy:
        raise ApiError(429, "too many fresh attestation requests; retry shortly") from None
    except ValueError:
        raise ApiError(400, "nonce must be 16 to 32 bytes of hex") from None


def attest_agent(
    store: TenantStoreProtocol, agent: dict[str, Any], bundle: dict[str, Any] | None
) -> dict[str, Any]:
    """An agent's attestation view, with the platform bundle when given."""
    view = agent_attestation(store, agent)
    if bundle is not None:
        view["attestation"] = bundle
    return view


async def _read_form(request: Request, limit: int) -> tuple[dict[str, str], bytes]:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise ApiError(413, f"upload exceeds {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"upload exceeds {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)

    async def replay() -> dict[str, Any]:
        return {"type": "http.request", "body": raw, "more_body": False}

    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(415, "agent uploads must be multipart/form-data")
    try:
        form = await Request(request.scope, replay).form(max_files=1, max_fields=_FORM_FIELDS)
    except Exception as exc:
        raise ApiError(400, f"malformed multipart body ({type(exc).__name__})") from None
    archive = form.get("archive")
    if not isinstance(archive, UploadFile):
        raise ApiError(400, "the 'archive' file field is required")
    data = await archive.read()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    await form.close()
    return fields, data


async def upload(request: Request) -> JSONResponse:
    """``POST /v1/room-agents``: register an agent from a ``.tar.gz`` archive."""
    caller = require(request, "owner")
    services = request.app.state.services
    limit = services.settings.max_archive_bytes
    fields, data = await _read_form(request, limit + _FORM_SLACK)
    spec = AgentSpec.from_form(fields)
    archive = read_archive(data, max_archive_bytes=limit)
    sealer = None
    if spec.inspection_mode == "sealed":
        key = await tenant_key(services, caller)
        scope = KeyScope.tenant(caller.tenant_id)

        def sealer(agent_id: str, path: str, content: bytes) -> bytes:
            return seal_blob(key, scope, "agent-file", (agent_id, path), content)

    store = services.storage.tenant(caller.tenant_id)
    row = register_agent(store, caller.tenant_id, spec, archive, sealer=sealer)
    run_id = credentials.new_run_id()
    now = services.clock()
    store.insert_run(
        {
            "run_id": run_id,
            "agent_id": row["agent_id"],
            "status": "completed",
            "created_at": now,
            "updated_at": now,
            "output": "agent archive checked and stored",
            "billing_status": "unbilled",
        }
    )
    return JSONResponse({"agent_id": row["agent_id"], "run_id": run_id, "status": "completed"})


def _visible_ids(services: Any, caller: Caller) -> set[str] | None:
    """Agent ids an invite may see (None: all, for owners)."""
    if caller.role == "owner":
        return None
    room = core.load_room(services, caller, caller.room_id)
    ids = (room["scope_agent_id"], room["fixed_query_agent_id"], room["fixed_mediator_agent_id"])
    # and the query agents this credential uploaded into its room (their upload runs)
    runs = services.storage.tenant(caller.tenant_id).list_runs(
        10_000, issuer_token_id=caller.token_id
    )
    uploaded = {r["agent_id"] for r in runs if r["room_id"] == caller.room_id and r["agent_id"]}
    return {i for i in ids if i} | uploaded


def _agent(request: Request, caller: Caller) -> tuple[TenantStoreProtocol, dict[str, Any]]:
    services = request.app.state.services
    store = services.storage.tenant(caller.tenant_id)
    agent_id = str(request.path_params["agent_id"])
    visible = _visible_ids(services, caller)
    row = store.get_agent(agent_id)
    if row is None or (visible is not None and agent_id not in visible):
        raise ApiError(404, "agent not found")
    return store, row


async def list_agents(request: Request) -> JSONResponse:
    """``GET /v1/room-agents``: agent configs, newest first."""
    caller = require(request, "owner", "query")
    kind = request.query_params.get("type") or None
    if kind is not None and kind not in AGENT_TYPES:
        raise ApiError(422, f"type must be one of {', '.join(AGENT_TYPES)}")
    services = request.app.state.services
    visible = _visible_ids(services, caller)
    rows = services.storage.tenant(caller.tenant_id).list_agents(kind)
    return JSONResponse(
        [agent_config(r) for r in rows if visible is None or r["agent_id"] in visible]
    )


async def get_agent(request: Request) -> JSONResponse:
    """``GET /v1/room-agents/{agent_id}``."""
    _, row = _agent(request, require(request, "owner", "query"))
    return JSONResponse(agent_config(row))


async def delete_agent(request: Request) -> JSONResponse:
    """``DELETE /v1/room-agents/{agent_id}``."""
    store, row = _agent(request, require(request, "owner"))
    agent_id = row["agent_id"]
    for room in store.list_rooms(1_000_000):
        slots = (
            room["scope_agent_id"],
            room["fixed_query_agent_id"],
            room["fixed_mediator_agent_id"],
        )
        if room["revoked_at"] is None and agent_id in slots:
            raise ApiError(409, f"agent is used by live room {room['room_id']}; revoke it first")
    store.delete_agent(agent_id)
    return JSONResponse({"status": "ok"})


async def attest(request: Request) -> JSONResponse:
    """``GET /v1/room-agents/{agent_id}/attest``: digests plus the platform bundle."""
    store, row = _agent(request, require(request, "owner", "query"))
    bundle = await attestation_bundle(request.app.state.services, request)
    return JSONResponse(attest_agent(store, row, bundle))


async def files(request: Request) -> JSONResponse:
    """``GET /v1/room-agents/{agent_id}/files``: paths and sizes (also for sealed agents)."""
    store, row = _agent(request, require(request, "owner", "query"))
    return JSONResponse(
        {"agent_id": row["agent_id"], "files": agent_files_view(store, row["agent_id"])}
    )


async def file_content(request: Request) -> Response:
    """``GET /v1/room-agents/{agent_id}/files/{path}``: one inspectable file (403 if sealed)."""
    store, row = _agent(request, require(request, "owner", "query"))
    content = agent_file_content(store, row, str(request.path_params["path"]))
    return Response(content, media_type="text/plain; charset=utf-8", headers=NO_STORE)


routes = [
    Route("/v1/room-agents", upload, methods=["POST"]),
    Route("/v1/room-agents", list_agents, methods=["GET"]),
    Route("/v1/room-agents/{agent_id}", get_agent, methods=["GET"]),
    Route("/v1/room-agents/{agent_id}", delete_agent, methods=["DELETE"]),
    Route("/v1/room-agents/{agent_id}/attest", attest, methods=["GET"]),
    Route("/v1/room-agents/{agent_id}/files", files, methods=["GET"]),
    Route("/v1/room-agents/{agent_id}/files/{path:path}", file_content, methods=["GET"]),
]
