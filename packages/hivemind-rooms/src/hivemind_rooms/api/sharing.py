"""Handing a room to more participants: extra invites and the room share link.

Both mint a credential and wrap the open room key to it, so the room must
have been opened since the process started (503 otherwise). Only digests of
the credentials are stored: the plaintext appears once, in the response that
mints it, and is never shown again (``GET .../share-link`` reports whether a
link exists and its prefix, with ``share_token`` and ``link`` null).
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .. import credentials
from ..credentials import CredentialKind
from ..links import LinkError, LinkKind, RoomLink, normalise_service_url
from ..manifest import invite_constraints
from ..tenants import INVITE_EXPIRY_RANGE, Caller
from ..vault import KeyScope, wrap_key
from . import _room_core as core
from ._auth import require
from ._body import Field, json_body
from ._errors import NO_STORE, ApiError
from ._seal import room_key, wrap_json
from ._services import Services

__all__ = ["routes"]


def _manifest(row: dict[str, Any]) -> dict[str, Any]:
    return dict(core.room_object(row)["manifest"])


def _share_link_text(base: str, room_id: str, token: str, owner_pubkey_b64: str) -> str:
    try:
        service = normalise_service_url(base)
        return RoomLink(room_id, service, token, owner_pubkey_b64, LinkKind.SHARE).format()
    except LinkError:
        return ""


async def _wrap_for(
    services: Services, caller: Caller, room: dict[str, Any], wrap_id: str, token: str
) -> None:
    key = await room_key(services, caller, room)
    scope = KeyScope.room(caller.tenant_id, room["room_id"])
    wrap = await run_in_threadpool(lambda: wrap_key(key, scope, wrap_id, token, kdf=services.kdf))
    services.storage.tenant(caller.tenant_id).put_wrap(
        room["room_id"], wrap_id, wrap_json(wrap), services.clock()
    )


async def _invite_lifetime(request: Request) -> int | None:
    """The optional ``expires_in_seconds`` of an invite body (empty body: none)."""
    body = await json_body(
        request,
        {"expires_in_seconds": Field((int,), nullable=True, default=None)},
        allow_empty=True,
    )
    seconds: int | None = body["expires_in_seconds"]
    low, high = INVITE_EXPIRY_RANGE
    if seconds is not None and not low <= seconds <= high:
        problem = {
            "loc": ["body", "expires_in_seconds"],
            "msg": f"must be between {low} and {high} seconds",
            "type": "value_error.number",
        }
        raise ApiError(422, [problem])
    return seconds


async def new_invite(request: Request) -> JSONResponse:
    """``POST /v1/rooms/{room_id}/invites``: one more invite (one per participant).

    The optional body ``{"expires_in_seconds": N}`` (60 s to 365 days) gives
    the invite an expiry after which it is refused like a revoked one.
    """
    caller = require(request, "owner")
    services: Services = request.app.state.services
    expires_in = await _invite_lifetime(request)
    room = core.live_room(services, caller, str(request.path_params["room_id"]))
    manifest = _manifest(room)
    await room_key(services, caller, room)  # fail before minting if the room is sealed
    token, token_id, expires_at = services.tenants.mint_invite(
        caller.tenant_id,
        label=f"room:{manifest['name'] or room['room_id']}",
        constraints=invite_constraints(manifest),
        expires_in=expires_in,
    )
    await _wrap_for(services, caller, room, f"query:{token_id}", token)
    base = normalise_service_url(str(request.base_url))
    link = RoomLink(room["room_id"], base, token, manifest["owner_pubkey_b64"]).format()
    body = {
        "room_id": room["room_id"],
        "token": token,
        "token_id": token_id,
        "link": link,
        "expires_at": expires_at,
    }
    return JSONResponse(body, headers=NO_STORE)


def _link_view(row: dict[str, Any] | None, room_id: str) -> dict[str, Any]:
    if row is None:
        return {"enabled": False, "room_id": room_id}
    return {
        "enabled": True,
        "room_id": room_id,
        "share_token": None,
        "prefix": row["token_id"][:8],
        "created_at": row["created_at"],
        "rotated_at": row["rotated_at"],
        "link": None,
    }


async def _mint_share(request: Request, caller: Caller, room: dict[str, Any]) -> JSONResponse:
    services: Services = request.app.state.services
    control = services.storage.control
    old = control.get_share_link(caller.tenant_id, room["room_id"])
    token = credentials.new_credential(CredentialKind.SHARE)
    token_id = credentials.token_id(token)
    await _wrap_for(services, caller, room, f"share:{token_id}", token)
    control.put_share_link(
        caller.tenant_id, room["room_id"], services.hasher.digest(token), token_id, services.clock()
    )
    if old is not None:
        _drop_wrap(services, caller, room["room_id"], old["token_id"])
    view = _link_view(control.get_share_link(caller.tenant_id, room["room_id"]), room["room_id"])
    base = str(request.base_url)
    view["share_token"] = token
    view["link"] = _share_link_text(
        base, room["room_id"], token, _manifest(room)["owner_pubkey_b64"]
    )
    return JSONResponse(view, headers=NO_STORE)


def _drop_wrap(services: Services, caller: Caller, room_id: str, token_id: str) -> None:
    services.storage.tenant(caller.tenant_id).delete_wrap(room_id, f"share:{token_id}")
    services.keyring.forget_wrap(KeyScope.room(caller.tenant_id, room_id), f"share:{token_id}")


async def share_link(request: Request) -> JSONResponse:
    """``GET|POST|DELETE /v1/rooms/{room_id}/share-link``: show, create (idempotent), disable."""
    caller = require(request, "owner")
    services: Services = request.app.state.services
    room_id = str(request.path_params["room_id"])
    row = services.storage.control.get_share_link(caller.tenant_id, room_id)
    if request.method == "GET":
        core.load_room(services, caller, room_id)
        return JSONResponse(_link_view(row, room_id))
    if request.method == "DELETE":
        core.load_room(services, caller, room_id)
        if row is not None:
            services.storage.control.delete_share_link(caller.tenant_id, room_id)
            _drop_wrap(services, caller, room_id, row["token_id"])
        return JSONResponse({"enabled": False, "room_id": room_id})
    room = core.live_room(services, caller, room_id)
    if row is not None:
        return JSONResponse(_link_view(row, room_id))
    return await _mint_share(request, caller, room)


async def rotate(request: Request) -> JSONResponse:
    """``POST /v1/rooms/{room_id}/share-link/rotate``: replace the share token."""
    caller = require(request, "owner")
    services: Services = request.app.state.services
    room = core.live_room(services, caller, str(request.path_params["room_id"]))
    if services.storage.control.get_share_link(caller.tenant_id, room["room_id"]) is None:
        raise ApiError(404, "this room has no share link")
    return await _mint_share(request, caller, room)


routes = [
    Route("/v1/rooms/{room_id}/invites", new_invite, methods=["POST"]),
    Route("/v1/rooms/{room_id}/share-link", share_link, methods=["GET", "POST", "DELETE"]),
    Route("/v1/rooms/{room_id}/share-link/rotate", rotate, methods=["POST"]),
]
