"""Opening room keys and the tenant seal with a presented credential.

Key derivation is deliberately slow, so every wrap and unwrap runs in a worker
thread. A cached key is only handed to a caller whose own credential opens its
own wrap (the keyring checks this); a room that has not been opened since the
process started answers 503 for data until ``POST /v1/rooms/{id}/open``.
"""

from __future__ import annotations

import json

from starlette.concurrency import run_in_threadpool

from ..canonical import b64_decode, b64_encode
from ..tenants import Caller
from ..vault import (
    KeyScope,
    KeyWrap,
    SecretKey,
    VaultAuthError,
    key_check_value,
    new_secret_key,
    wrap_key,
)
from ._errors import sealed
from ._services import Services

__all__ = ["open_room", "room_key", "tenant_key", "wrap_id_for", "wrap_json"]


def wrap_id_for(caller: Caller) -> str:
    """The wrap id a caller's credential opens."""
    if caller.role == "owner":
        return "owner"
    return f"{caller.role}:{caller.token_id}"


def wrap_json(wrap: KeyWrap) -> str:
    """Serialize a wrap for storage."""
    return json.dumps(wrap.to_dict(), sort_keys=True, separators=(",", ":"))


async def _unlock(
    services: Services, scope: KeyScope, stored: str | None, check_b64: str, caller: Caller
) -> SecretKey:
    if stored is None:
        raise sealed("Room", "the room has no key wrap for this credential")
    try:
        wrap = KeyWrap.from_dict(json.loads(stored))
        check = b64_decode(check_b64, length=32)
        return await run_in_threadpool(services.keyring.open, scope, wrap, caller.bearer, check)
    except (VaultAuthError, ValueError):
        raise sealed("Room", "the room key could not be opened with this credential") from None


async def open_room(services: Services, caller: Caller, room: dict[str, str]) -> SecretKey:
    """Open a room's key with the caller's credential (``POST /open``).

    Raises:
        ApiError: 503 when the caller has no wrap or its credential does not open it.
    """
    scope = KeyScope.room(caller.tenant_id, room["room_id"])
    stored = services.storage.tenant(caller.tenant_id).get_wrap(
        room["room_id"], wrap_id_for(caller)
    )
    return await _unlock(services, scope, stored, room["key_check"], caller)


async def room_key(services: Services, caller: Caller, room: dict[str, str]) -> SecretKey:
    """Return the key of an already opened room, re-checking the caller's credential.

    Raises:
        ApiError: 503 when the room has not been opened since the process started.
    """
    scope = KeyScope.room(caller.tenant_id, room["room_id"])
    if not services.keyring.is_open(scope):
        raise sealed("Room", "present a room credential with POST /v1/rooms/{room_id}/open")
    return await open_room(services, caller, room)


async def tenant_key(services: Services, caller: Caller) -> SecretKey:
    """Return the tenant seal key, creating the seal on first use (owner only).

    Raises:
        ApiError: 503 when the seal exists and this credential does not open it.
    """
    scope = KeyScope.tenant(caller.tenant_id)
    store = services.storage.tenant(caller.tenant_id)
    row = store.get_tenant_kek()
    if row is None:
        key = new_secret_key()
        wrap = await run_in_threadpool(
            lambda: wrap_key(key, scope, "owner", caller.bearer, kdf=services.kdf)
        )
        check = b64_encode(key_check_value(key, scope))
        if store.put_tenant_kek(wrap_json(wrap), check, services.clock()):
            services.keyring.install(scope, key)
            return key
        row = store.get_tenant_kek()
        assert row is not None
    try:
        wrap = KeyWrap.from_dict(json.loads(row["wrapped"]))
        check_bytes = b64_decode(row["key_check"], length=32)
        return await run_in_threadpool(
            services.keyring.open, scope, wrap, caller.bearer, check_bytes
        )
    except (VaultAuthError, ValueError):
        raise sealed("Tenant", "the tenant seal does not open with this credential") from None
