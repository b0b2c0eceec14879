"""Run submission preflight (``POST /v1/rooms/{room_id}/runs``).

Everything a run needs before it may start is checked here, in the order the
protocol fixes (first failure wins): caller and role, the room (signature,
revocation), the room-forced agents, the models a participant may not choose,
the provider, the open room key, the idempotency key and the payer. A
participant must name a payer tenant with ``X-Hivemind-Api-Key``; without one
the answer is 402 and nothing is stored.
A request that passes every check gets a billing hold and a ``pending`` run
row, and its plan goes to the run engine's queue; the answer carries the run
id. Invite runs are recorded with the invite's token id (so only it, and the
owner within the room's output visibility, can read them). The prompt is kept
only for rooms whose query is inspectable, and then sealed under the room key.
The owner may name the model of any stage; a participant's model reaches the
query stage only, while the scope and mediator stages, which guard the owner's
data, keep the operator's model (the run attestation names all three).
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any, final

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .. import credentials
from ..agents_registry import AgentSpec, read_archive, register_agent
from ..pipeline import AgentRef, EngineConfig, QueueFull, RunEngine, RunPlan, seal_run_text
from ..pipeline._record import finish_run
from ..tenants import Caller
from ..vault import KeyScope, VaultLocked, seal_blob
from . import _room_core as core
from ._auth import require
from ._body import Field, json_body
from ._errors import ApiError, sealed
from ._seal import open_room
from ._services import Services
from .agents import _FORM_SLACK, _read_form

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


def _check_agent_binding(
    store: Any, caller: Caller, room: dict[str, Any], agent: dict[str, Any]
) -> None:
    """An agent uploaded into a room runs only there, and only for whoever uploaded it.

    The upload's own run row (same agent, room and issuer) is the record of who
    uploaded it; so neither the owner nor another participant can re-run a
    participant's (possibly sealed) agent, here or in another room.
    """
    bound = agent["room_id"]
    if bound is None:
        if room["query_mode"] == "uploadable" and caller.role != "owner":
            raise ApiError(403, "in this room you may only run a query agent you uploaded")
        return
    if bound != room["room_id"]:
        raise ApiError(403, "this query agent belongs to another room")
    issuer = None if caller.role == "owner" else caller.token_id
    mine = (
        store.list_runs(10_000)
        if issuer is None
        else store.list_runs(10_000, issuer_token_id=issuer)
    )
    if not any(
        r["agent_id"] == agent["agent_id"]
        and r["room_id"] == bound
        and r["issuer_token_id"] == issuer
        for r in mine
    ):
        raise ApiError(403, "in this room you may only run a query agent you uploaded")


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
    _guard_models(caller, body)
    provider = _provider(room, body)
    store = services.storage.tenant(caller.tenant_id)
    if store.get_agent(room["scope_agent_id"]) is None:
        raise ApiError(404, "scope agent not found")
    agent = store.get_agent(query_agent)
    if agent is None:
        raise ApiError(404, "query agent not found")
    # a run presents its credential: it opens the room key itself (the restart property)
    await open_room(services, caller, room)
    run_id = request.headers.get("x-hivemind-idempotency-key")
    if run_id is not None and not _IDEMPOTENCY.fullmatch(run_id):
        raise ApiError(400, "X-Hivemind-Idempotency-Key must be 12 to 64 lowercase hex")
    payer, payer_token = _payer(services, request, caller)
    _check_agent_binding(store, caller, room, agent)
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


def _agent_ref(store: Any, agent_id: str) -> AgentRef:
    row = store.get_agent(agent_id)
    if row is None:
        raise ApiError(404, f"agent {agent_id!r} not found")
    return AgentRef(
        agent_id=agent_id,
        digest=row["files_digest"],
        attested_digest=row["attested_files_digest"],
        inspection_mode=row["inspection_mode"],
        memory_mb=int(row["memory_mb"]),
        timeout_s=int(row["timeout_seconds"]),
        max_llm_calls=int(row["max_llm_calls"]),
    )


def _guard_models(caller: Caller, body: dict[str, Any]) -> None:
    """A participant may not name the model of the stages that guard the owner's data.

    Raises:
        ApiError: 403 for ``scope_model`` or ``mediator_model`` from a non-owner.
    """
    if caller.role != "owner" and (body.get("scope_model") or body.get("mediator_model")):
        raise ApiError(403, "the scope and mediator models are not the participant's choice")


def _models(
    config: EngineConfig, provider: str, body: dict[str, Any], roles: Any, *, owner: bool
) -> dict[str, str]:
    """The model of each stage.

    The owner may name any stage's model. A participant's ``model`` (or
    ``query_model``) reaches the query stage only: the scope function and the
    mediator protect the owner's data, so they keep the operator's model
    whatever the participant asks (a weaker model there would weaken them).
    """
    if not provider:
        return {}
    asked = str(body.get("model") or config.default_model)
    if owner:
        return {r: str(body.get(f"{r}_model") or asked) for r in roles}
    query = str(body.get("query_model") or asked)
    return {r: query if r == "query" else config.default_model for r in roles}


def _vault_items(services: Services, caller: Caller, room: dict[str, Any]) -> list[dict[str, Any]]:
    rows = services.storage.tenant(caller.tenant_id).list_items(room["room_id"])
    if not rows:
        return []
    scope = KeyScope.room(caller.tenant_id, room["room_id"])
    return core.open_items(services.keyring.get(scope), scope, rows)


def _replay(store: Any, caller: Caller, run_id: str, room_id: str) -> JSONResponse | None:
    row = store.get_run(run_id)
    if row is None:
        return None
    issuer = None if caller.role == "owner" else caller.token_id
    if row["room_id"] != room_id:
        raise ApiError(409, "this idempotency key belongs to a run of another room")
    if row["issuer_token_id"] != issuer:
        raise ApiError(409, "this idempotency key belongs to another caller")
    return JSONResponse(
        {
            "run_id": run_id,
            "room_id": room_id,
            "query_agent_id": row["agent_id"],
            "scope_agent_id": row["scope_agent_id"],
            "status": row["status"],
            "idempotent_replay": True,
        }
    )


def _plan(
    services: Services, engine: RunEngine, caller: Caller, req: RunRequest, run_id: str
) -> RunPlan:
    store = services.storage.tenant(caller.tenant_id)
    room = store.get_room(req.room_id)
    assert room is not None
    manifest = json.loads(room["envelope"])["manifest"]
    agents = {
        "scope": _agent_ref(store, req.scope_agent_id),
        "query": _agent_ref(store, req.query_agent_id),
    }
    if req.mediator_agent_id:
        agents["mediator"] = _agent_ref(store, req.mediator_agent_id)
    config = engine.config
    body = req.body
    return RunPlan(
        run_id=run_id,
        tenant_id=caller.tenant_id,
        room_id=req.room_id,
        manifest_hash=room["manifest_hash"],
        prompt=body["query"],
        policy=room["room_policy"],
        allowed_tables=list(manifest["allowed_tables"]),
        agents=agents,
        provider=req.provider,
        models=_models(config, req.provider, body, agents, owner=caller.role == "owner"),
        vault_items=_vault_items(services, caller, room),
        max_tokens=min(body.get("max_tokens") or config.default_max_tokens, config.max_tokens),
        max_calls=body.get("max_llm_calls"),
        timeout_s=body.get("timeout_seconds"),
        allow_artifacts=bool(room["allow_artifacts"]),
        payer_tenant_id=req.payer_tenant_id,
        payer_token_id=req.payer_token_id,
        hold_micro_usd=0,
    )


def _sealed_prompt(services: Services, plan: RunPlan, room: dict[str, Any]) -> str | None:
    """The prompt as stored: sealed under the room key, and only for inspectable queries.

    Raises:
        ApiError: 503 when the room key was closed since preflight (room revoked).
    """
    manifest = json.loads(room["envelope"])["manifest"]
    if manifest["query"].get("visibility") != "inspectable":
        return None
    scope = KeyScope.room(plan.tenant_id, plan.room_id)
    try:
        key = services.keyring.get(scope)
    except VaultLocked:
        raise sealed("Room", "the room key was closed") from None
    return seal_run_text(key, scope, plan.run_id, "prompt", plan.prompt)


def _run_row(
    plan: RunPlan, caller: Caller, room: dict[str, Any], hold: Any, now: float, prompt: str | None
) -> dict[str, Any]:
    return {
        "run_id": plan.run_id,
        "agent_id": plan.agents["query"].agent_id,
        "room_id": plan.room_id,
        "room_manifest_hash": plan.manifest_hash,
        "scope_agent_id": plan.agents["scope"].agent_id,
        "status": "pending",
        "created_at": now,
        "updated_at": now,
        "prompt": prompt,
        "issuer_token_id": None if caller.role == "owner" else caller.token_id,
        "payer_tenant_id": plan.payer_tenant_id,
        "payer_token_id": plan.payer_token_id,
        "billable_role": caller.role,
        "billing_provider": plan.provider,
        "billing_model": plan.models.get("query", ""),
        "billing_hold_micro_usd": hold.hold_micro_usd,
        "billing_status": hold.status,
        "output_visibility": room["output_visibility"],
        "artifacts_enabled": int(plan.allow_artifacts and not plan.mediated),
    }


async def submit(request: Request) -> JSONResponse:
    """``POST /v1/rooms/{room_id}/runs``: preflight, hold, run row, then queue the run."""
    caller = require(request, "owner", "query", "share")
    services: Services = request.app.state.services
    engine: RunEngine | None = getattr(request.app.state, "runs", None)
    req = await preflight(request, caller)
    if engine is None:
        raise ApiError(503, "the run engine is not running")
    store = services.storage.tenant(caller.tenant_id)
    if req.run_id is not None:
        replay = _replay(store, caller, req.run_id, req.room_id)
        if replay is not None:
            return replay
    return await _start(services, engine, caller, req, req.run_id or credentials.new_run_id())


async def _start(
    services: Services,
    engine: RunEngine,
    caller: Caller,
    req: RunRequest,
    run_id: str,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    """Hold, insert the run row and queue the run; answer with the pending run."""
    store = services.storage.tenant(caller.tenant_id)
    plan = await run_in_threadpool(_plan, services, engine, caller, req, run_id)
    for model in sorted(set(plan.models.values())):
        if engine.config.route_disabled(plan.provider, model):
            raise ApiError(503, f"LLM route {plan.provider}:{model} is disabled by operator")
    hold = services.billing.hold(
        req.payer_tenant_id,
        run_id=run_id,
        provider=plan.provider,
        models=sorted(set(plan.models.values())),
        max_tokens=plan.max_tokens,
        metadata={"payer_token_id": req.payer_token_id, "billable_role": caller.role},
    )
    plan = dataclasses.replace(plan, hold_micro_usd=hold.hold_micro_usd)
    room = store.get_room(req.room_id)
    try:
        prompt = _sealed_prompt(services, plan, room)
        store.insert_run(_run_row(plan, caller, room, hold, services.clock(), prompt))
        engine.submit(plan)
    except QueueFull:
        recover_one(services, plan)
        raise ApiError(503, "too many runs are waiting; retry shortly") from None
    except ApiError:
        services.billing.settle(
            plan.payer_tenant_id, run_id=plan.run_id, hold_micro_usd=plan.hold_micro_usd, stages={}
        )
        raise
    return JSONResponse(
        {
            "run_id": run_id,
            "room_id": req.room_id,
            "query_agent_id": plan.agents["query"].agent_id,
            "scope_agent_id": plan.agents["scope"].agent_id,
            "status": "pending",
            **(extra or {}),
        }
    )


def recover_one(services: Services, plan: RunPlan) -> None:
    """Fail a run that could not be queued and return its hold."""
    services.billing.settle(
        plan.payer_tenant_id, run_id=plan.run_id, hold_micro_usd=plan.hold_micro_usd, stages={}
    )
    store = services.storage.tenant(plan.tenant_id)
    finish_run(
        store,
        plan.run_id,
        {"status": "failed", "error": "the run queue was full", "updated_at": services.clock()},
    )


def _question(fields: dict[str, str]) -> str:
    """The question of an upload form (``query``, or ``prompt`` as some clients name it)."""
    return str(fields.get("query") or fields.get("prompt") or "")


def _upload_spec(fields: dict[str, str]) -> AgentSpec:
    if "policy" in fields:
        raise ApiError(400, "the room policy cannot be overridden")
    if not _question(fields).strip():
        raise ApiError(422, "the 'query' field is required")
    values = {**fields, "agent_type": "query"}
    values.setdefault("name", "uploaded-query-agent")
    values["inspection_mode"] = fields.get("inspection_mode") or "sealed"
    return AgentSpec.from_form(values)


async def upload_query_agent(request: Request) -> JSONResponse:
    """``POST /v1/rooms/{room_id}/query-agents``: upload a (sealed) query agent and run it.

    The agent's files are sealed under the room key (opened with the caller's
    own credential), bound to this room, and runnable only by the uploader.
    """
    caller = require(request, "owner", "query")
    services: Services = request.app.state.services
    engine: RunEngine | None = getattr(request.app.state, "runs", None)
    room = core.live_room(services, caller, str(request.path_params["room_id"]))
    if room["query_mode"] == "fixed":
        raise ApiError(403, "this room has a fixed query agent")
    if caller.role == "query" and not caller.constraints.get("can_upload_query_agent"):
        raise ApiError(403, "this invite may not upload query agents")
    limit = services.settings.max_archive_bytes
    fields, data = await _read_form(request, limit + _FORM_SLACK)
    spec = _upload_spec(fields)
    provider = _provider(room, {"provider": fields.get("provider")})
    archive = read_archive(data, max_archive_bytes=limit)
    key = await open_room(services, caller, room)
    payer, payer_token = _payer(services, request, caller)
    if engine is None:
        raise ApiError(503, "the run engine is not running")
    scope = KeyScope.room(caller.tenant_id, room["room_id"])

    def sealer(agent_id: str, path: str, content: bytes) -> bytes:
        return seal_blob(key, scope, "agent-file", (agent_id, path), content)

    store = services.storage.tenant(caller.tenant_id)
    row = register_agent(
        store, caller.tenant_id, spec, archive, sealer=sealer, seal_mode="room",
        room_id=room["room_id"],
    )  # fmt: skip
    body: dict[str, Any] = {"query": _question(fields)}
    if fields.get("max_tokens"):
        body["max_tokens"] = spec.max_tokens
    req = RunRequest(
        room["room_id"], room["scope_agent_id"], row["agent_id"],
        room["fixed_mediator_agent_id"] or "", provider, payer, payer_token, None, body,
    )  # fmt: skip
    extra = {"agent_id": row["agent_id"], "inspection_mode": spec.inspection_mode}
    return await _start(services, engine, caller, req, credentials.new_run_id(), extra)


routes = [
    Route("/v1/rooms/{room_id}/runs", submit, methods=["POST"]),
    Route("/v1/rooms/{room_id}/query-agents", upload_query_agent, methods=["POST"]),
]
