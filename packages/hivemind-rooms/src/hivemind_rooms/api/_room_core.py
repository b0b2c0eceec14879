"""Room logic behind the room routes: registration, loading, access and vault data.

A room is registered from an envelope the owner signed on their own machine.
The service checks the signature against the tenant's registered owner key
(the first room registers it), that the manifest names this tenant, that the
room id is new, that every agent it names exists with the visibility it
claims, and that every allowed table exists. It then creates the room key,
wraps it to the owner's credential and to a freshly minted invite, and stores
the room and both wraps in one transaction.

Every load re-verifies the stored envelope against the owner key (409 on
failure). An invite reaches only the room its constraints name (403
elsewhere); another tenant's room simply does not exist for a caller (404).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from starlette.concurrency import run_in_threadpool

from .. import credentials
from ..canonical import b64_encode
from ..links import LinkError, RoomLink, normalise_service_url
from ..manifest import ManifestError, invite_constraints, verify_signed_manifest
from ..tenants import Caller
from ..vault import (
    KeyScope,
    SecretKey,
    VaultDecryptError,
    key_check_value,
    new_secret_key,
    open_item,
    seal_item,
    wrap_key,
)
from ._errors import ApiError
from ._seal import room_key, wrap_json
from ._services import Services

__all__ = ["add_item", "create_room", "list_items", "load_room", "open_items", "room_object"]

_VIS_TO_MODE = {"inspectable": "full", "sealed": "sealed"}


def room_object(row: dict[str, Any]) -> dict[str, Any]:
    """The public room object of a stored row."""
    envelope = json.loads(row["envelope"])
    return {
        "room_id": row["room_id"],
        "name": row["name"],
        "envelope": envelope,
        "manifest": envelope["manifest"],
        "manifest_hash": row["manifest_hash"],
        "scope_agent_id": row["scope_agent_id"],
        "fixed_query_agent_id": row["fixed_query_agent_id"],
        "fixed_mediator_agent_id": row["fixed_mediator_agent_id"],
        "query_mode": row["query_mode"],
        "output_visibility": row["output_visibility"],
        "allowed_llm_providers": json.loads(row["allowed_llm_providers"]),
        "allow_artifacts": bool(row["allow_artifacts"]),
        "policy": row["room_policy"],
        "created_at": row["created_at"],
        "revoked_at": row["revoked_at"],
    }


def room_columns(envelope: dict[str, Any]) -> dict[str, Any]:
    """Columns derived from a verified envelope (never from request fields)."""
    m = envelope["manifest"]
    fixed = m["query"]["mode"] == "fixed"
    return {
        "name": m["name"],
        "envelope": json.dumps(envelope, sort_keys=True, separators=(",", ":")),
        "manifest_hash": envelope["manifest_hash"],
        "scope_agent_id": m["scope"]["agent_id"],
        "fixed_query_agent_id": m["query"]["agent_id"] if fixed else None,
        "fixed_mediator_agent_id": m["mediator"]["agent_id"] or None,
        "query_mode": m["query"]["mode"],
        "output_visibility": m["output"]["visibility"],
        "allowed_llm_providers": json.dumps(m["egress"]["llm_providers"]),
        "allow_artifacts": int(bool(m["egress"]["allow_artifacts"])),
        "room_policy": m["policy"],
    }


def load_room(services: Services, caller: Caller, room_id: str) -> dict[str, Any]:
    """Load a room the caller may see and re-verify its signature.

    Raises:
        ApiError: 403 invite for another room; 404 unknown; 409 bad signature.
    """
    if caller.role != "owner" and caller.room_id != room_id:
        raise ApiError(403, "this credential is not valid for this room")
    row = services.storage.tenant(caller.tenant_id).get_room(room_id)
    if row is None:
        raise ApiError(404, "room not found")
    tenant = services.storage.control.get_tenant(caller.tenant_id) or {}
    try:
        verify_signed_manifest(
            json.loads(row["envelope"]),
            tenant.get("owner_pubkey_b64") or "",
            expected_room_id=room_id,
            expected_tenant_id=caller.tenant_id,
        )
    except (ManifestError, ValueError):
        raise ApiError(409, "stored room envelope failed signature verification") from None
    return row


def live_room(services: Services, caller: Caller, room_id: str) -> dict[str, Any]:
    """Like :func:`load_room` but refuse revoked rooms (403)."""
    row = load_room(services, caller, room_id)
    if row["revoked_at"] is not None:
        raise ApiError(403, "room has been revoked")
    return row


def _check_agents(services: Services, tenant_id: str, manifest: dict[str, Any]) -> None:
    store = services.storage.tenant(tenant_id)
    slots = [("scope", manifest["scope"])]
    if manifest["query"]["mode"] == "fixed":
        slots.append(("query", manifest["query"]))
    if manifest["mediator"]["agent_id"]:
        slots.append(("mediator", manifest["mediator"]))
    for slot, block in slots:
        agent = store.get_agent(block["agent_id"])
        if agent is None:
            raise ApiError(404, f"{slot} agent {block['agent_id']!r} not found")
        if agent["room_id"] is not None:
            raise ApiError(400, f"{slot} agent {block['agent_id']!r} belongs to another room")
        if _VIS_TO_MODE[block["visibility"]] != agent["inspection_mode"]:
            raise ApiError(
                400,
                f"{slot} visibility {block['visibility']!r} does not match the registered "
                f"agent's inspection mode {agent['inspection_mode']!r}",
            )


def _check_tables(services: Services, tenant_id: str, manifest: dict[str, Any]) -> None:
    existing = {t.lower() for t in services.storage.tenant(tenant_id).user_tables()}
    missing = [t for t in manifest["allowed_tables"] if t.lower() not in existing]
    if missing:
        raise ApiError(400, f"allowed_tables not found in the tenant database: {missing}")


def _verify_new(services: Services, caller: Caller, envelope: Any) -> dict[str, Any]:
    tenant = services.storage.control.get_tenant(caller.tenant_id) or {}
    signer = envelope.get("signer_pubkey_b64") if isinstance(envelope, dict) else None
    expected = tenant.get("owner_pubkey_b64") or (signer if isinstance(signer, str) else "")
    try:
        return verify_signed_manifest(envelope, expected, expected_tenant_id=caller.tenant_id)
    except ManifestError as exc:
        raise ApiError(400, str(exc)) from None


async def create_room(
    services: Services, caller: Caller, envelope: Any, service_url: str
) -> dict[str, Any]:
    """Register a signed room, mint its invite and wrap the new room key to both.

    Raises:
        ApiError: 400 bad envelope/agents/tables, 404 unknown agent, 409 room exists
            or a different owner key is registered.
    """
    manifest = _verify_new(services, caller, envelope)
    room_id = manifest["room_id"]
    store = services.storage.tenant(caller.tenant_id)
    if store.get_room(room_id) is not None:
        raise ApiError(409, "a room with this id already exists")
    _check_agents(services, caller.tenant_id, manifest)
    _check_tables(services, caller.tenant_id, manifest)
    if not services.storage.control.set_owner_pubkey(
        caller.tenant_id, manifest["owner_pubkey_b64"]
    ):
        raise ApiError(409, "the envelope is signed by a key other than the tenant's owner key")
    scope = KeyScope.room(caller.tenant_id, room_id)
    key = new_secret_key()
    token, token_id, _ = services.tenants.mint_invite(
        caller.tenant_id,
        label=f"room:{manifest['name'] or room_id}",
        constraints=invite_constraints(manifest),
    )
    wraps = await run_in_threadpool(
        lambda: [
            ("owner", wrap_json(wrap_key(key, scope, "owner", caller.bearer, kdf=services.kdf))),
            (
                f"query:{token_id}",
                wrap_json(wrap_key(key, scope, f"query:{token_id}", token, kdf=services.kdf)),
            ),
        ]
    )
    row = {
        "room_id": room_id,
        **room_columns(envelope),
        "key_check": b64_encode(key_check_value(key, scope)),
        "created_at": float(manifest["created_at"]),
    }
    try:
        store.insert_room(row, wraps, services.clock())
    except Exception as exc:
        services.tenants.revoke_token(caller.tenant_id, token_id)
        if isinstance(exc, sqlite3.IntegrityError):
            raise ApiError(409, "a room with this id already exists") from None
        raise
    services.keyring.install(scope, key)
    link = _link(room_id, service_url, token, manifest["owner_pubkey_b64"])
    stored = store.get_room(room_id) or row
    return {
        "room_id": room_id,
        "room": room_object(stored),
        "token": token,
        "token_id": token_id,
        "link": link,
    }


def _link(room_id: str, service_url: str, token: str, owner_pubkey_b64: str) -> str:
    try:
        return RoomLink(
            room_id, normalise_service_url(service_url), token, owner_pubkey_b64
        ).format()
    except LinkError:
        return ""


async def add_item(
    services: Services, caller: Caller, room: dict[str, Any], text: str, metadata: dict[str, Any]
) -> dict[str, Any]:
    """Seal one vault item (text and metadata) under the open room key."""
    key = await room_key(services, caller, room)
    scope = KeyScope.room(caller.tenant_id, room["room_id"])
    item_id = credentials.new_item_id()
    now = services.clock()
    blob = seal_item(key, scope, item_id, text, metadata)
    size = len(text.encode("utf-8"))
    services.storage.tenant(caller.tenant_id).insert_item(
        {
            "room_id": room["room_id"],
            "item_id": item_id,
            "ciphertext": blob,
            "size_bytes": size,
            "created_at": now,
        }
    )
    return {
        "room_id": room["room_id"],
        "item_id": item_id,
        "metadata": metadata,
        "created_at": now,
        "size_bytes": size,
    }


async def list_items(
    services: Services, caller: Caller, room: dict[str, Any]
) -> list[dict[str, Any]]:
    """Open every vault item of an open room."""
    store = services.storage.tenant(caller.tenant_id)
    rows = store.list_items(room["room_id"])
    if not rows:
        return []
    key = await room_key(services, caller, room)
    scope = KeyScope.room(caller.tenant_id, room["room_id"])
    opened = open_items(key, scope, rows)
    return [
        {
            "room_id": room["room_id"],
            "item_id": row["item_id"],
            "text": item["text"],
            "metadata": item["metadata"],
            "created_at": row["created_at"],
            "size_bytes": row["size_bytes"],
        }
        for row, item in zip(rows, opened, strict=True)
    ]


def open_items(key: SecretKey, scope: KeyScope, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Open stored vault items: ``{"item_id", "text", "metadata"}`` each, in order.

    All or nothing: one item that fails authentication (damaged, moved from
    another item or room) refuses the whole request, so no run ever starts on
    partial data.

    Raises:
        ApiError: 409 ``vault_item_unreadable`` (which item or why is not said).
    """
    items = []
    for row in rows:
        try:
            text, metadata = open_item(key, scope, row["item_id"], bytes(row["ciphertext"]))
        except (VaultDecryptError, ValueError, KeyError, TypeError):
            raise ApiError(
                409, "a stored vault item failed authentication", error="vault_item_unreadable"
            ) from None
        items.append({"item_id": row["item_id"], "text": text, "metadata": metadata})
    return items
