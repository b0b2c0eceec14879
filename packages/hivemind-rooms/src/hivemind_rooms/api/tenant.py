"""Tenant-owner utilities: key rotation, invite tokens, SQL on the tenant's own tables."""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .. import credentials
from ..canonical import b64_decode
from ..credentials import CredentialKind
from ..storage._owner_sql import OwnerSqlError, run_owner_sql
from ..tenants import Caller
from ..vault import KeyScope, KeyWrap, VaultAuthError, unwrap_key, wrap_key
from . import _room_core as core
from ._auth import require
from ._body import Field, json_body
from ._errors import NO_STORE, ApiError
from ._seal import wrap_json
from ._services import Services

__all__ = ["routes"]


def _rewrap_all(services: Services, caller: Caller, new_key: str) -> tuple[str | None, dict]:
    """Open every owner wrap with the old credential and wrap it again for the new one.

    Runs in a worker thread (key derivation is slow). Any wrap that does not
    open with the presented credential aborts the rotation: nothing changes.
    """
    store = services.storage.tenant(caller.tenant_id)

    def rewrap(scope: KeyScope, stored: str, check_b64: str) -> str:
        wrap = KeyWrap.from_dict(json.loads(stored))
        key = unwrap_key(wrap, scope, caller.bearer, b64_decode(check_b64, length=32))
        return wrap_json(wrap_key(key, scope, "owner", new_key, kdf=services.kdf))

    seal = store.get_tenant_kek()
    tenant_wrap = None
    if seal is not None:
        tenant_wrap = rewrap(KeyScope.tenant(caller.tenant_id), seal["wrapped"], seal["key_check"])
    rooms: dict[str, str] = {}
    for room in store.list_rooms(1_000_000):
        stored = store.get_wrap(room["room_id"], "owner")
        if stored is not None:
            scope = KeyScope.room(caller.tenant_id, room["room_id"])
            rooms[room["room_id"]] = rewrap(scope, stored, room["key_check"])
    return tenant_wrap, rooms


async def rotate_key(request: Request) -> JSONResponse:
    """``POST /v1/tenant/rotate-key``: new owner key; the seal and room owner wraps follow it."""
    caller = require(request, "owner")
    services: Services = request.app.state.services
    new_key = credentials.new_credential(CredentialKind.OWNER)
    try:
        tenant_wrap, rooms = await run_in_threadpool(_rewrap_all, services, caller, new_key)
    except (VaultAuthError, ValueError):
        raise ApiError(
            409, "a stored owner wrap does not open with this key: nothing changed"
        ) from None
    services.storage.tenant(caller.tenant_id).replace_owner_wraps(
        tenant_wrap, rooms, services.clock()
    )
    services.storage.control.set_tenant_key_hash(caller.tenant_id, services.hasher.digest(new_key))
    for room_id in rooms:
        services.keyring.forget_wrap(KeyScope.room(caller.tenant_id, room_id), "owner")
    services.keyring.forget_wrap(KeyScope.tenant(caller.tenant_id), "owner")
    return JSONResponse({"tenant_id": caller.tenant_id, "api_key": new_key}, headers=NO_STORE)


async def list_tokens(request: Request) -> JSONResponse:
    """``GET /v1/tenant/tokens``: invites, revoked ones included (no secrets)."""
    caller = require(request, "owner")
    return JSONResponse(
        {"tokens": request.app.state.services.tenants.list_tokens(caller.tenant_id)}
    )


async def revoke_token(request: Request) -> JSONResponse:
    """``DELETE /v1/tenant/tokens/{token_id}``: revoke by id prefix (≥ 6 hex)."""
    caller = require(request, "owner")
    services: Services = request.app.state.services
    token_id = services.tenants.revoke_token(caller.tenant_id, str(request.path_params["token_id"]))
    for room_id in services.storage.tenant(caller.tenant_id).rooms_with_wrap(f"query:{token_id}"):
        services.keyring.forget_wrap(KeyScope.room(caller.tenant_id, room_id), f"query:{token_id}")
    return JSONResponse({"status": "ok", "token_id": token_id})


async def owner_sql(request: Request) -> JSONResponse:
    """``POST /v1/tenant/sql``: one statement on the owner's own tables."""
    caller = require(request, "owner")
    services: Services = request.app.state.services
    body = await json_body(
        request,
        {
            "sql": Field((str,), required=True, max_len=100_000),
            "params": Field((list,), default=[], max_len=1000),
        },
    )
    if any(isinstance(p, dict | list) for p in body["params"]):
        raise ApiError(
            422,
            [{"loc": ["body", "params"], "msg": "params must be scalars", "type": "type_error"}],
        )
    path = services.storage.tenant_path(caller.tenant_id)
    services.storage.tenant(caller.tenant_id)
    try:
        result = await run_in_threadpool(run_owner_sql, path, body["sql"], body["params"])
    except OwnerSqlError as exc:
        raise ApiError(400, str(exc)) from None
    return JSONResponse(result)


def _schema_rows(store: Any, tables: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "table_name": table,
            "column_name": col["name"],
            "data_type": col["type"],
            "is_nullable": not col["notnull"],
            "column_default": col["dflt_value"],
        }
        for table in tables
        for col in store.table_columns(table)
    ]


async def schema(request: Request) -> JSONResponse:
    """``GET /v1/admin/schema``: the owner's tables; an invite sees only its room's tables."""
    caller = require(request, "owner", "query")
    services: Services = request.app.state.services
    store = services.storage.tenant(caller.tenant_id)
    tables = store.user_tables()
    if caller.role == "query":
        room = core.load_room(services, caller, caller.room_id)
        allowed = {t.lower() for t in json.loads(room["envelope"])["manifest"]["allowed_tables"]}
        tables = [t for t in tables if t.lower() in allowed]
    return JSONResponse({"schema": _schema_rows(store, tables)})


async def compose_pins(request: Request) -> JSONResponse:
    """Legacy compose pins: replaced by owner-signed room trust updates (410)."""
    require(request, "owner", "query")
    raise ApiError(410, "compose pins were replaced by room trust: POST /v1/rooms/{id}/trust")


routes = [
    Route("/v1/tenant/rotate-key", rotate_key, methods=["POST"]),
    Route("/v1/tenant/sql", owner_sql, methods=["POST"]),
    Route("/v1/tenant/tokens", list_tokens, methods=["GET"]),
    Route("/v1/tenant/tokens/{token_id}", revoke_token, methods=["DELETE"]),
    Route("/v1/admin/schema", schema, methods=["GET"]),
    Route("/v1/tenants/compose-pin", compose_pins, methods=["GET", "POST"]),
    Route("/v1/tenants/compose-pin/list", compose_pins, methods=["GET"]),
    Route("/v1/tenants/compose-pin/{pin_id}", compose_pins, methods=["DELETE"]),
]
