"""Sealed room data: per-room keys wrapped to credentials, sealed items, keyring.

Theory of operation.

*Keys.* Each room has a random 32-byte room key; each tenant has a random
tenant key (the tenant seal, protecting reusable sealed agent source). A key
is never stored in clear: it is *wrapped* once per credential allowed to open
it (the owner's ``hmk_``, each invite ``hmq_``, each share ``hms_``). A wrap:

1. derives a key-encryption key ``KEK = argon2id(password, salt)`` where the
   password is the length-prefixed context (label, tenant, room, wrap id)
   followed by the credential, and the salt is 16 random bytes;
2. stores a *KEK check value* (keyed BLAKE2b of a fixed label under the KEK),
   compared in constant time on every open before anything is decrypted;
3. encrypts the key with XChaCha20-Poly1305 under the KEK, with associated
   data binding the same context, so a wrap moved to another room, tenant or
   wrap id fails to open.

The scope also has a *key check value* (keyed BLAKE2b under the room key)
stored beside the wraps: whatever wrap opened, the key must match it, so a
wrap smuggled into the table that encrypts some other key is refused.

*Items.* Room data is sealed under the room key with XChaCha20-Poly1305 and a
24-byte random nonce; associated data binds tenant, room and item id, so a
ciphertext copied to another item, room or tenant fails. Item text and
metadata are sealed together. Every decryption failure raises the same
opaque :class:`VaultDecryptError`.

*Restart property.* :class:`VaultKeyring` holds opened keys in memory only. A
new process starts empty: every read raises :class:`VaultLocked` (the service
answers 503) until someone presents a credential that opens a wrap. The
keyring also remembers, per (scope, wrap id), an HMAC of the credential that
opened it under a per-process random key; a later open with the same
credential skips the slow KDF, any other credential pays it and must unwrap
its own wrap. A cached key is never handed out on the strength of a cache hit
alone.

*Revocation.* Revoking a room is final: the storage deletes every wrap of
its key in the same transaction (and SQLite overwrites the deleted rows), and
the keyring forgets the key. With no wrap left the key exists nowhere, so
everything sealed under it stays sealed for good, even for someone holding
the owner credential and a copy of the database.

*Costs.* The inputs are 256-bit random credentials, so argon2id adds
defence in depth rather than the main strength; :data:`DEFAULT_KDF` is
moderate (3 passes, 64 MiB, tens of milliseconds: run it in a worker thread)
and :data:`FAST_KDF` (1 pass, 8 KiB) exists for tests only. Stored parameters
are bounded so a tampered row cannot make the service burn unbounded memory.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from typing import Any, final

import nacl.bindings as sodium
import nacl.exceptions

from hivemind_rooms._vault_keys import (
    DEFAULT_KDF,
    FAST_KDF,
    NONCE_BYTES,
    KdfParams,
    KeyScope,
    KeyWrap,
    SecretKey,
    VaultAuthError,
    VaultDecryptError,
    VaultError,
    VaultLocked,
    key_check_value,
    new_secret_key,
    random_bytes,
    unwrap_key,
    wrap_key,
)
from hivemind_rooms.credentials import Rng

__all__ = [
    "DEFAULT_KDF",
    "FAST_KDF",
    "KdfParams",
    "KeyScope",
    "KeyWrap",
    "SecretKey",
    "VaultAuthError",
    "VaultDecryptError",
    "VaultError",
    "VaultKeyring",
    "VaultLocked",
    "key_check_value",
    "new_secret_key",
    "open_blob",
    "open_item",
    "seal_blob",
    "seal_item",
    "unwrap_key",
    "wrap_key",
]

_MAX_BLOB = 64 * 1024 * 1024


def seal_blob(
    key: SecretKey, scope: KeyScope, label: str, ids: tuple[str, ...], plaintext: bytes,
    *, rng: Rng | None = None,
) -> bytes:  # fmt: skip
    """Seal bytes under a scope key, bound to ``label`` and ``ids``.

    Use ``label="item"`` with ``ids=(item_id,)`` for room vault items,
    ``label="agent-file"`` with ``ids=(agent_id, path)`` for sealed agent
    files, and ``label="artifact"`` with ``ids=(format, run_id, name)`` for
    run artifacts (:mod:`hivemind_rooms.pipeline`). Returns
    ``nonce(24) || ciphertext || tag(16)``.
    """
    if len(plaintext) > _MAX_BLOB:
        raise ValueError("blob too large")
    nonce = random_bytes(rng, NONCE_BYTES)
    aad = scope.context(label, *ids)
    return nonce + sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
        plaintext, aad, nonce, key.raw()
    )


def open_blob(
    key: SecretKey, scope: KeyScope, label: str, ids: tuple[str, ...], blob: bytes
) -> bytes:
    """Open a blob sealed by :func:`seal_blob` with the same scope, label and ids.

    Raises:
        VaultDecryptError: any mismatch or damage (no detail given).
    """
    if not isinstance(blob, bytes) or len(blob) < NONCE_BYTES + 16:
        raise VaultDecryptError()
    aad = scope.context(label, *ids)
    try:
        return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
            blob[NONCE_BYTES:], aad, blob[:NONCE_BYTES], key.raw()
        )
    except nacl.exceptions.CryptoError as exc:
        raise VaultDecryptError() from exc


def seal_item(
    key: SecretKey, scope: KeyScope, item_id: str, text: str, metadata: Mapping[str, Any],
    *, rng: Rng | None = None,
) -> bytes:  # fmt: skip
    """Seal a room vault item: its text and its metadata together."""
    payload = json.dumps(
        {"text": text, "metadata": dict(metadata)},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    ).encode("utf-8")  # fmt: skip
    return seal_blob(key, scope, "item", (item_id,), payload, rng=rng)


def open_item(
    key: SecretKey, scope: KeyScope, item_id: str, blob: bytes
) -> tuple[str, dict[str, Any]]:
    """Open a room vault item sealed by :func:`seal_item`.

    Returns:
        ``(text, metadata)``.

    Raises:
        VaultDecryptError: wrong key, room, tenant or item id, or damage.
    """
    payload = json.loads(open_blob(key, scope, "item", (item_id,), blob))
    return payload["text"], payload["metadata"]


@final
class VaultKeyring:
    """Opened scope keys, held in memory for the life of the process.

    A new keyring is empty: that is the restart property.
    """

    def __init__(self) -> None:
        self._keys: dict[KeyScope, SecretKey] = {}
        self._openers: dict[tuple[KeyScope, str], bytes] = {}
        self._mac_key = secrets.token_bytes(32)

    def __repr__(self) -> str:
        return f"VaultKeyring(open_scopes={len(self._keys)})"

    def _fingerprint(self, scope: KeyScope, wrap_id: str, credential: str) -> bytes:
        msg = scope.context("opener", wrap_id) + credential.encode("utf-8")
        return hmac.new(self._mac_key, msg, hashlib.sha256).digest()

    def open(
        self, scope: KeyScope, wrap: KeyWrap, credential: str, expected_check: bytes
    ) -> SecretKey:
        """Open ``scope`` with a credential and its own wrap; cache the key.

        Raises:
            VaultAuthError: the credential does not open the wrap (the
                keyring is left unchanged).
        """
        known = self._openers.get((scope, wrap.wrap_id))
        fingerprint = self._fingerprint(scope, wrap.wrap_id, credential)
        cached = self._keys.get(scope)
        if (
            cached is not None
            and known is not None
            and hmac.compare_digest(known, fingerprint)
            and hmac.compare_digest(key_check_value(cached, scope), expected_check)
        ):
            return cached
        key = unwrap_key(wrap, scope, credential, expected_check)
        self._keys[scope] = key
        self._openers[(scope, wrap.wrap_id)] = fingerprint
        return key

    def install(self, scope: KeyScope, key: SecretKey) -> None:
        """Hold a key just created by this process (room creation, first seal)."""
        self._keys[scope] = key

    def get(self, scope: KeyScope) -> SecretKey:
        """Return the opened key of ``scope`` for background work.

        Raises:
            VaultLocked: not opened since the process started.
        """
        key = self._keys.get(scope)
        if key is None:
            raise VaultLocked()
        return key

    def is_open(self, scope: KeyScope) -> bool:
        """Whether ``scope`` has been opened since the process started."""
        return scope in self._keys

    def forget(self, scope: KeyScope) -> None:
        """Drop an opened key (room revoked or deleted, seal cleared)."""
        self._keys.pop(scope, None)
        for pair in [p for p in self._openers if p[0] == scope]:
            del self._openers[pair]

    def forget_wrap(self, scope: KeyScope, wrap_id: str) -> None:
        """Forget which credential opened one wrap (invite revoked, key rotated)."""
        self._openers.pop((scope, wrap_id), None)
