"""Run submission preflight (``POST /v1/rooms/{room_id}/runs``).

Everything a run needs before it may start is checked here, in the order the
protocol fixes (first failure wins): caller and role, the room (signature,
revocation), the room-forced agents and provider, the open room key, the
idempotency key and the payer. A participant must name a payer tenant with
``X-Hivemind-Api-Key``; without one the answer is 402 and nothing is stored.
The execution pipeline itself is not part of this service build, so a request
that passes every check is answered 501, still without a run row or a hold.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any, final

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..tenants import Caller
from . import _room_core as core
from ._auth import require
from ._body import Field, json_body
from ._errors import ApiError
from ._seal import room_key
from ._services import Services

__all__ = ["RunRequest", "preflight", "routes"]

_IDEMPOTENCY = re.compile(r"^[a-f0-9]{12,64}$")
_OPTIONAL_STR = Field((str,), nullable=True, max_len=300)
_OPTIONAL_POS = Field((int,), nullable=True)
_SCHEMA = {
    "query": Field((str,), required=True, max_len=200_000),
    "query_agent_id": _OPTIONAL_STR,
    "mediator_agent_id": _OPTIONAL_STR,
    "max_tokens": _OPTIONAL_POS,
    "max_llm_calls": _OPTIONAL_POS,
    "timeout_seconds": _OPTIONAL_POS,
    "model": _OPTIONAL_STR,
    "scope_model": _OPTIONAL_STR,
    "query_model": _OPTIONAL_STR,
    "mediator_model": _OPTIONAL_STR,
    "provider": _OPTIONAL_STR,
}


@final
@dataclasses.dataclass(frozen=True)
class RunRequest:
    """A run that passed every preflight check."""

    room_id: str
    scope_agent_id: str
    query_agent_id: str
    mediator_agent_id: str
    provider: str
    payer_tenant_id: str
    payer_token_id: str
    run_id: str | None
    body: dict[str, Any]


def _positive(body: dict[str, Any]) -> None:
    for name in ("max_tokens", "max_llm_calls", "timeout_seconds"):
        if body.get(name) is not None and body[name] < 1:
            raise ApiError(
                422, [{"loc": ["body", name], "msg": "must be at least 1", "type": "value_error"}]
            )
    if not body["query"].strip():
        raise ApiError(
            422, [{"loc": ["body", "query"], "msg": "must not be blank", "type": "value_error"}]
        )


def _agents(room: dict[str, Any], body: dict[str, Any]) -> tuple[str, str]:
    wanted_mediator = body.get("mediator_agent_id") or ""
    mediator = room["fixed_mediator_agent_id"] or ""
    if wanted_mediator and wanted_mediator != mediator:
        raise ApiError(400, "the mediator is fixed by the room manifest")
    if room["query_mode"] == "fixed":
        named = body.get("query_agent_id") or ""
        if named and named != room["fixed_query_agent_id"]:
            raise ApiError(400, "this room has a fixed query agent")
        return str(room["fixed_query_agent_id"]), mediator
    if not body.get("query_agent_id"):
        raise ApiError(400, "this room needs a query_agent_id (upload one first)")
    return str(body["query_agent_id"]), mediator


def _provider(room: dict[str, Any], body: dict[str, Any]) -> str:
    allowed = json.loads(room["allowed_llm_providers"])
    wanted = (body.get("provider") or "").strip().lower()
    if not allowed:
        if wanted:
            raise ApiError(400, "this room disallows external LLM egress; omit provider")
        return ""
    if wanted and wanted not in allowed:
        raise ApiError(400, f"provider {wanted!r} is not allowed by this room")
    return wanted or ("openrouter" if "openrouter" in allowed else allowed[0])


def _payer(services: Services, request: Request, caller: Caller) -> tuple[str, str]:
    key = request.headers.get("x-hivemind-api-key") or request.headers.get("x-hivemind-payer-key")
    if key:
        payer = services.tenants.payer(key)
        if payer is None:
            raise ApiError(401, "Unauthorized")
        return str(payer["tenant_id"]), str(payer["payer_token_id"])
    if caller.role == "owner":
        return caller.tenant_id, caller.token_id
    raise ApiError(
        402,
        "a participant run needs a paying tenant: send your own hmk_ key as X-Hivemind-Api-Key",
    )


async def preflight(request: Request, caller: Caller) -> RunRequest:
    """Run every submission check; nothing is stored.

    Raises:
        ApiError: the first check that fails, with its status.
    """
    services: Services = request.app.state.services
    body = await json_body(request, _SCHEMA)
    _positive(body)
    room = core.live_room(services, caller, str(request.path_params["room_id"]))
    query_agent, mediator = _agents(room, body)
    provider = _provider(room, body)
    store = services.storage.tenant(caller.tenant_id)
    if store.get_agent(room["scope_agent_id"]) is None:
        raise ApiError(404, "scope agent not found")
    if store.get_agent(query_agent) is None:
        raise ApiError(404, "query agent not found")
    await room_key(services, caller, room)
    run_id = request.headers.get("x-hivemind-idempotency-key")
    if run_id is not None and not _IDEMPOTENCY.fullmatch(run_id):
        raise ApiError(400, "X-Hivemind-Idempotency-Key must be 12 to 64 lowercase hex")
    payer, payer_token = _payer(services, request, caller)
    return RunRequest(
        room["room_id"],
        room["scope_agent_id"],
        query_agent,
        mediator,
        provider,
        payer,
        payer_token,
        run_id,
        body,
    )


async def submit(request: Request) -> JSONResponse:
    """``POST /v1/rooms/{room_id}/runs``: preflight, then 501 (no pipeline in this build)."""
    caller = require(request, "owner", "query", "share")
    await preflight(request, caller)
    raise ApiError(501, "room runs are not available in this service build")


async def upload_query_agent(request: Request) -> JSONResponse:
    """``POST /v1/rooms/{room_id}/query-agents``: needs the run pipeline (501)."""
    caller = require(request, "owner", "query")
    services: Services = request.app.state.services
    room = core.live_room(services, caller, str(request.path_params["room_id"]))
    if room["query_mode"] == "fixed":
        raise ApiError(403, "this room has a fixed query agent")
    if caller.role == "query" and not caller.constraints.get("can_upload_query_agent"):
        raise ApiError(403, "this invite may not upload query agents")
    raise ApiError(501, "room runs are not available in this service build")


routes = [
    Route("/v1/rooms/{room_id}/runs", submit, methods=["POST"]),
    Route("/v1/rooms/{room_id}/query-agents", upload_query_agent, methods=["POST"]),
]
