"""Room routes: registration, inspection, open, trust, revoke, invites and vault data."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..manifest import ManifestError, verify_trust_update
from ..vault import KeyScope
from . import _room_core as core
from ._auth import require
from ._body import Field, json_body
from ._errors import NO_STORE, ApiError
from ._query import int_param
from ._seal import open_room
from .agents import attest_agent, attestation_bundle

__all__ = ["routes"]

_ENVELOPE = {"envelope": Field((dict,), required=True)}


def _room_id(request: Request) -> str:
    return str(request.path_params["room_id"])


async def create(request: Request) -> JSONResponse:
    """``POST /v1/rooms``: register a room from an owner-signed envelope."""
    caller = require(request, "owner")
    body = await json_body(request, _ENVELOPE)
    services = request.app.state.services
    base = str(request.base_url).rstrip("/")
    result = await core.create_room(services, caller, body["envelope"], base)
    return JSONResponse(result, headers=NO_STORE)


async def list_rooms(request: Request) -> JSONResponse:
    """``GET /v1/rooms``: the owner's rooms, or an invite's one room."""
    caller = require(request, "owner", "query", "share")
    limit = int_param(request, "limit", 50, 1, 100)
    services = request.app.state.services
    if caller.role != "owner":
        row = core.load_room(services, caller, caller.room_id)
        return JSONResponse({"rooms": [core.room_object(row)]})
    rows = services.storage.tenant(caller.tenant_id).list_rooms(limit)
    return JSONResponse({"rooms": [core.room_object(r) for r in rows]})


async def get_room(request: Request) -> JSONResponse:
    """``GET /v1/rooms/{room_id}``."""
    caller = require(request, "owner", "query", "share")
    row = core.load_room(request.app.state.services, caller, _room_id(request))
    return JSONResponse(core.room_object(row))


async def attest(request: Request) -> JSONResponse:
    """``GET /v1/rooms/{room_id}/attest``: room, its agents' digests and the platform bundle."""
    caller = require(request, "owner", "query", "share")
    services = request.app.state.services
    row = core.live_room(services, caller, _room_id(request))
    store = services.storage.tenant(caller.tenant_id)

    def agent(agent_id: str | None) -> dict[str, Any] | None:
        found = store.get_agent(agent_id) if agent_id else None
        return attest_agent(store, found, None) if found else None

    bundle = await attestation_bundle(services, request)
    return JSONResponse(
        {
            "room": core.room_object(row),
            "scope_agent": agent(row["scope_agent_id"]),
            "query_agent": agent(row["fixed_query_agent_id"]),
            "mediator_agent": agent(row["fixed_mediator_agent_id"]),
            "attestation": bundle,
        }
    )


def _key_status(services: Any, caller: Any, room_id: str) -> dict[str, Any]:
    store = services.storage.tenant(caller.tenant_id)
    return {
        "room_id": room_id,
        "open": services.keyring.is_open(KeyScope.room(caller.tenant_id, room_id)),
        "wrap_count": len(store.wrap_ids(room_id)),
        "item_count": store.count_items(room_id),
    }


async def key_status(request: Request) -> JSONResponse:
    """``GET /v1/rooms/{room_id}/key``: whether the room key is open (never the key)."""
    caller = require(request, "owner", "query", "share")
    services = request.app.state.services
    row = core.load_room(services, caller, _room_id(request))
    return JSONResponse(_key_status(services, caller, row["room_id"]))


async def open_(request: Request) -> JSONResponse:
    """``POST /v1/rooms/{room_id}/open``: open the room key with the caller's credential."""
    caller = require(request, "owner", "query", "share")
    services = request.app.state.services
    row = core.live_room(services, caller, _room_id(request))
    await open_room(services, caller, row)
    return JSONResponse(_key_status(services, caller, row["room_id"]))


async def trust(request: Request) -> JSONResponse:
    """``POST /v1/rooms/{room_id}/trust``: install an owner-signed trust update."""
    caller = require(request, "owner")
    services = request.app.state.services
    row = core.live_room(services, caller, _room_id(request))
    body = await json_body(request, _ENVELOPE)
    previous = json.loads(row["envelope"])["manifest"]
    tenant = services.storage.control.get_tenant(caller.tenant_id) or {}
    try:
        verify_trust_update(previous, body["envelope"], tenant.get("owner_pubkey_b64") or "")
    except ManifestError as exc:
        raise ApiError(400, f"trust update rejected: {exc}") from None
    store = services.storage.tenant(caller.tenant_id)
    store.update_room(row["room_id"], core.room_columns(body["envelope"]))
    updated = store.get_room(row["room_id"]) or row
    return JSONResponse({"room_id": row["room_id"], "room": core.room_object(updated)})


async def revoke(request: Request) -> JSONResponse:
    """``DELETE /v1/rooms/{room_id}``: revoke the room and every invite to it.

    Revocation is final and destroys the room key: every wrap of it (owner,
    invites, share link) is deleted and the opened key is dropped from the
    keyring, so the room's sealed items, run fields and artifacts can never be
    opened again. Metadata (the room row, run rows and billing) stays.
    """
    caller = require(request, "owner")
    services = request.app.state.services
    row = core.load_room(services, caller, _room_id(request))
    if not services.storage.tenant(caller.tenant_id).revoke_room(row["room_id"], services.clock()):
        raise ApiError(404, "room not found or already revoked")
    count = services.tenants.revoke_room_tokens(caller.tenant_id, row["room_id"])
    shared = services.storage.control.delete_share_link(caller.tenant_id, row["room_id"])
    services.keyring.forget(KeyScope.room(caller.tenant_id, row["room_id"]))
    return JSONResponse(
        {
            "status": "ok",
            "room_id": row["room_id"],
            "invites_revoked": count,
            "share_link_disabled": shared,
        }
    )


async def add_data(request: Request) -> JSONResponse:
    """``POST /v1/rooms/{room_id}/data``: seal one item into the room vault."""
    caller = require(request, "owner")
    services = request.app.state.services
    body = await json_body(
        request,
        {
            "text": Field((str,), required=True, max_len=8 * 1024 * 1024),
            "metadata": Field((dict,), default={}),
        },
    )
    if not body["text"]:
        raise ApiError(
            422, [{"loc": ["body", "text"], "msg": "must not be empty", "type": "value_error"}]
        )
    row = core.live_room(services, caller, _room_id(request))
    item = await core.add_item(services, caller, row, body["text"], body["metadata"])
    return JSONResponse(item)


async def list_data(request: Request) -> JSONResponse:
    """``GET /v1/rooms/{room_id}/data``: the owner reads the open room's items."""
    caller = require(request, "owner")
    services = request.app.state.services
    row = core.load_room(services, caller, _room_id(request))
    items = await core.list_items(services, caller, row)
    return JSONResponse({"items": items}, headers=NO_STORE)


routes = [
    Route("/v1/rooms", create, methods=["POST"]),
    Route("/v1/rooms", list_rooms, methods=["GET"]),
    Route("/v1/rooms/{room_id}", get_room, methods=["GET"]),
    Route("/v1/rooms/{room_id}", revoke, methods=["DELETE"]),
    Route("/v1/rooms/{room_id}/attest", attest, methods=["GET"]),
    Route("/v1/rooms/{room_id}/key", key_status, methods=["GET"]),
    Route("/v1/rooms/{room_id}/open", open_, methods=["POST"]),
    Route("/v1/rooms/{room_id}/trust", trust, methods=["POST"]),
    Route("/v1/rooms/{room_id}/data", add_data, methods=["POST"]),
    Route("/v1/rooms/{room_id}/data", list_data, methods=["GET"]),
]
