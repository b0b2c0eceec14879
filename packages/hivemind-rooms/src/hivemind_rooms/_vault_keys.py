"""Scope keys and their wraps: the key-management half of the vault.

See :mod:`hivemind_rooms.vault` for the theory of operation. This module
derives key-encryption keys with argon2id, wraps and unwraps scope keys with
XChaCha20-Poly1305, and computes the KEK and key check values.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any, final

import nacl.bindings as sodium
import nacl.exceptions
import nacl.pwhash.argon2id as argon2id

from hivemind_rooms.canonical import CanonicalError, b64_decode, b64_encode
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
    "VaultLocked",
    "key_check_value",
    "new_secret_key",
    "unwrap_key",
    "wrap_key",
]

_KEY_BYTES = 32
_NONCE_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
_SALT_BYTES = argon2id.SALTBYTES
_CHECK_BYTES = 32
_MAX_OPS = 10
_MAX_MEM = 1 << 30
NONCE_BYTES = _NONCE_BYTES


class VaultError(Exception):
    """Base class of vault errors."""


class VaultLocked(VaultError):
    """The scope has not been opened since the process started (answer 503)."""

    def __init__(self) -> None:
        super().__init__("room data is sealed: present a room credential to open it")


class VaultAuthError(VaultError):
    """The presented credential does not open this wrap. The message never varies."""

    def __init__(self) -> None:
        super().__init__("the credential does not open this room key")


class VaultDecryptError(VaultError):
    """A sealed blob failed authentication. The message never varies."""

    def __init__(self) -> None:
        super().__init__("decryption failed")


@final
@dataclass(frozen=True)
class KdfParams:
    """argon2id cost parameters."""

    opslimit: int
    memlimit: int

    def __post_init__(self) -> None:
        if not argon2id.OPSLIMIT_MIN <= self.opslimit <= _MAX_OPS:
            raise ValueError("argon2id opslimit out of range")
        if not argon2id.MEMLIMIT_MIN <= self.memlimit <= _MAX_MEM:
            raise ValueError("argon2id memlimit out of range")


DEFAULT_KDF = KdfParams(opslimit=3, memlimit=64 * 1024 * 1024)
FAST_KDF = KdfParams(opslimit=argon2id.OPSLIMIT_MIN, memlimit=argon2id.MEMLIMIT_MIN)


@final
@dataclass(frozen=True)
class KeyScope:
    """What a key protects: one room of a tenant, or a tenant's own seal."""

    kind: str
    tenant_id: str
    room_id: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("room", "tenant") or not self.tenant_id:
            raise ValueError("invalid key scope")
        if (self.kind == "room") != bool(self.room_id):
            raise ValueError("a room scope needs a room id, a tenant scope none")

    @classmethod
    def room(cls, tenant_id: str, room_id: str) -> KeyScope:
        """The scope of one room's key."""
        return cls("room", tenant_id, room_id)

    @classmethod
    def tenant(cls, tenant_id: str) -> KeyScope:
        """The scope of a tenant's seal key."""
        return cls("tenant", tenant_id)

    def context(self, label: str, *parts: str) -> bytes:
        """Length-prefixed encoding of label, scope and ``parts`` (for AAD/KDF)."""
        return _lp("hivemind-vault-v1", label, self.kind, self.tenant_id, self.room_id, *parts)


def _lp(*parts: str) -> bytes:
    out = bytearray()
    for part in parts:
        data = part.encode("utf-8")
        out += len(data).to_bytes(4, "big") + data
    return bytes(out)


@final
class SecretKey:
    """A 32-byte symmetric key (room or tenant key). The repr hides it."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) != _KEY_BYTES:
            raise ValueError("a key is 32 bytes")
        self._key = key

    def __repr__(self) -> str:
        return "SecretKey(<hidden>)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretKey) and hmac.compare_digest(self._key, other._key)

    def __hash__(self) -> int:
        return hash(hashlib.sha256(b"key-id" + self._key).digest())

    def raw(self) -> bytes:
        """The key bytes (only for wrapping)."""
        return self._key


def _random(rng: Rng | None, n: int) -> bytes:
    data = (rng or secrets.token_bytes)(n)
    if len(data) != n:
        raise ValueError("rng returned the wrong number of bytes")
    return data


def new_secret_key(*, rng: Rng | None = None) -> SecretKey:
    """Generate a fresh room or tenant key."""
    return SecretKey(_random(rng, _KEY_BYTES))


def key_check_value(key: SecretKey, scope: KeyScope) -> bytes:
    """The public check value that identifies ``key`` for ``scope`` (32 bytes)."""
    return hashlib.blake2b(scope.context("key-check"), key=key.raw(), digest_size=32).digest()


@final
@dataclass(frozen=True)
class KeyWrap:
    """One stored wrap of a scope key for one credential.

    Attributes:
        wrap_id: ``owner``, ``query:<token id>``, ``share:<id>`` ...
        kdf: the argon2id parameters used.
        salt: 16 random bytes.
        kek_check: check value of the derived KEK.
        nonce: 24-byte XChaCha20 nonce.
        ciphertext: the wrapped key with its tag (48 bytes).
    """

    wrap_id: str
    kdf: KdfParams
    salt: bytes
    kek_check: bytes
    nonce: bytes
    ciphertext: bytes = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (base64 fields) for storage."""
        return {
            "v": 1,
            "wrap_id": self.wrap_id,
            "kdf": {"alg": "argon2id", "ops": self.kdf.opslimit, "mem": self.kdf.memlimit},
            "salt": b64_encode(self.salt),
            "kek_check": b64_encode(self.kek_check),
            "nonce": b64_encode(self.nonce),
            "ciphertext": b64_encode(self.ciphertext),
        }

    @classmethod
    def from_dict(cls, data: Any) -> KeyWrap:
        """Parse the stored form strictly.

        Raises:
            VaultAuthError: the stored form is malformed (it cannot open).
        """
        try:
            kdf = data["kdf"]
            if data["v"] != 1 or kdf["alg"] != "argon2id" or not isinstance(data["wrap_id"], str):
                raise VaultAuthError()
            return cls(
                wrap_id=data["wrap_id"],
                kdf=KdfParams(opslimit=kdf["ops"], memlimit=kdf["mem"]),
                salt=b64_decode(data["salt"], length=_SALT_BYTES),
                kek_check=b64_decode(data["kek_check"], length=_CHECK_BYTES),
                nonce=b64_decode(data["nonce"], length=_NONCE_BYTES),
                ciphertext=b64_decode(data["ciphertext"], length=_KEY_BYTES + 16),
            )
        except (KeyError, TypeError, ValueError, CanonicalError) as exc:
            raise VaultAuthError() from exc


def _derive_kek(
    scope: KeyScope, wrap_id: str, credential: str, salt: bytes, kdf: KdfParams
) -> bytes:
    password = scope.context("kek", wrap_id) + credential.encode("utf-8")
    return argon2id.kdf(_KEY_BYTES, password, salt, opslimit=kdf.opslimit, memlimit=kdf.memlimit)


def _kek_check(kek: bytes, scope: KeyScope, wrap_id: str) -> bytes:
    return hashlib.blake2b(scope.context("kek-check", wrap_id), key=kek, digest_size=32).digest()


def wrap_key(
    key: SecretKey,
    scope: KeyScope,
    wrap_id: str,
    credential: str,
    *,
    kdf: KdfParams = DEFAULT_KDF,
    rng: Rng | None = None,
) -> KeyWrap:
    """Wrap ``key`` so that ``credential`` can open it for ``scope``/``wrap_id``."""
    if not wrap_id or not credential:
        raise ValueError("wrap id and credential must be non-empty")
    salt = _random(rng, _SALT_BYTES)
    nonce = _random(rng, _NONCE_BYTES)
    kek = _derive_kek(scope, wrap_id, credential, salt, kdf)
    aad = scope.context("wrap", wrap_id)
    ct = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(key.raw(), aad, nonce, kek)
    return KeyWrap(wrap_id, kdf, salt, _kek_check(kek, scope, wrap_id), nonce, ct)


def unwrap_key(wrap: KeyWrap, scope: KeyScope, credential: str, expected_check: bytes) -> SecretKey:
    """Open a wrap with a presented credential.

    The KEK check value is compared first (constant time), then the wrap is
    decrypted, then the key must match the scope's key check value.

    Raises:
        VaultAuthError: the credential, the wrap or the check value is wrong.
    """
    kek = _derive_kek(scope, wrap.wrap_id, credential, wrap.salt, wrap.kdf)
    if not hmac.compare_digest(_kek_check(kek, scope, wrap.wrap_id), wrap.kek_check):
        raise VaultAuthError()
    aad = scope.context("wrap", wrap.wrap_id)
    try:
        raw = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
            wrap.ciphertext, aad, wrap.nonce, kek
        )
    except nacl.exceptions.CryptoError as exc:
        raise VaultAuthError() from exc
    key = SecretKey(raw)
    if not hmac.compare_digest(key_check_value(key, scope), expected_check):
        raise VaultAuthError()
    return key


def random_bytes(rng: Rng | None, n: int) -> bytes:
    """Return ``n`` bytes from ``rng`` or the OS."""
    return _random(rng, n)
