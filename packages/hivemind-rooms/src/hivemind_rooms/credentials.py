"""Bearer credentials, identifiers, and how credentials are stored.

Theory of operation: every bearer credential is a prefix naming its kind plus
43 characters of base64url (32 random bytes, 256 bits). Identifiers are a
prefix plus lowercase hex. Randomness comes from :mod:`secrets` unless a test
injects its own ``rng`` (a callable returning ``n`` bytes).

Storage. The service never stores a credential, only
``HMAC-SHA256(pepper, "hivemind-credential-v1" | kind | credential)`` as hex.
A slow password hash (argon2, scrypt) buys nothing here: the input already
has 256 bits of entropy, so guessing is hopeless either way, and a slow hash
would cost every authenticated request. HMAC rather than a bare SHA-256
because the pepper lives outside the database (configuration or a key file):
a stolen database alone then cannot even confirm a guessed or leaked token.
The digest is deterministic, so the stored column can be indexed and looked
up directly (a per-row salt would forbid that). The kind is part of the MAC
input, so an invite digest can never be matched as an owner-key digest.
Comparisons of digests and of the admin key use :func:`hmac.compare_digest`.

The user-visible token id stays the first 12 hex characters of the plain
SHA-256 of the token, so a client holding the token can compute it too; 48
bits of a hash of a 256-bit secret reveal nothing usable.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from enum import Enum
from typing import final

from hivemind_rooms.canonical import b64u_encode

__all__ = [
    "CredentialError",
    "CredentialHasher",
    "CredentialKind",
    "Rng",
    "admin_key_matches",
    "credential_kind",
    "new_agent_id",
    "new_credential",
    "new_credit_code_id",
    "new_item_id",
    "new_ledger_entry_id",
    "new_redemption_id",
    "new_room_id",
    "new_run_id",
    "new_tenant_id",
    "token_id",
]

Rng = Callable[[int], bytes]
"""A source of random bytes: ``rng(n)`` returns ``n`` bytes."""

_BODY = r"[A-Za-z0-9_-]{43}"
_PEPPER_MIN = 32


class CredentialError(ValueError):
    """A credential or identifier has the wrong shape."""


class CredentialKind(Enum):
    """Credential kinds; the value is the textual prefix."""

    OWNER = "hmk_"
    INVITE = "hmq_"
    SHARE = "hms_"
    CREDIT_CODE = "hmcc_"
    ADMIN = "hma_"


_PATTERNS = {kind: re.compile("^" + re.escape(kind.value) + _BODY + "$") for kind in CredentialKind}


def _random(rng: Rng | None, n: int) -> bytes:
    data = (rng or secrets.token_bytes)(n)
    if len(data) != n:
        raise CredentialError("rng returned the wrong number of bytes")
    return data


def new_credential(kind: CredentialKind, *, rng: Rng | None = None) -> str:
    """Mint a fresh credential of ``kind`` (prefix + 43 base64url characters)."""
    return kind.value + b64u_encode(_random(rng, 32))


def credential_kind(text: str) -> CredentialKind:
    """Classify a presented credential by its prefix and check its shape.

    Args:
        text: the presented bearer.

    Returns:
        The credential kind.

    Raises:
        CredentialError: not a well-formed credential of any known kind.
    """
    if isinstance(text, str):
        for kind, pattern in _PATTERNS.items():
            if pattern.fullmatch(text):
                return kind
    raise CredentialError("malformed credential")


def token_id(token: str) -> str:
    """The user-visible id of a token: the first 12 hex of its SHA-256."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:12]


def _hex_id(prefix: str, nbytes: int, rng: Rng | None) -> str:
    return prefix + _random(rng, nbytes).hex()


def new_tenant_id(*, rng: Rng | None = None) -> str:
    """``t_`` + 12 hex."""
    return _hex_id("t_", 6, rng)


def new_room_id(*, rng: Rng | None = None) -> str:
    """``room_`` + 12 hex."""
    return _hex_id("room_", 6, rng)


def new_agent_id(*, rng: Rng | None = None) -> str:
    """12 hex (no prefix)."""
    return _hex_id("", 6, rng)


def new_run_id(*, rng: Rng | None = None) -> str:
    """12 hex (no prefix)."""
    return _hex_id("", 6, rng)


def new_item_id(*, rng: Rng | None = None) -> str:
    """Room vault item id: ``rvi_`` + 16 hex."""
    return _hex_id("rvi_", 8, rng)


def new_credit_code_id(*, rng: Rng | None = None) -> str:
    """``cc_`` + 16 hex."""
    return _hex_id("cc_", 8, rng)


def new_redemption_id(*, rng: Rng | None = None) -> str:
    """``ccr_`` + 24 hex."""
    return _hex_id("ccr_", 12, rng)


def new_ledger_entry_id(*, rng: Rng | None = None) -> str:
    """``ble_`` + 24 hex."""
    return _hex_id("ble_", 12, rng)


@final
class CredentialHasher:
    """Turns credentials into storable digests and checks them.

    Args:
        pepper: a secret of at least 32 bytes kept outside the database.
    """

    __slots__ = ("_pepper",)

    def __init__(self, pepper: bytes) -> None:
        if not isinstance(pepper, bytes) or len(pepper) < _PEPPER_MIN:
            raise CredentialError("pepper must be at least 32 bytes")
        self._pepper = pepper

    def __repr__(self) -> str:
        return "CredentialHasher(pepper=<hidden>)"

    @staticmethod
    def generate_pepper(*, rng: Rng | None = None) -> bytes:
        """Return 32 fresh random bytes suitable as a pepper."""
        return _random(rng, 32)

    def digest(self, credential: str) -> str:
        """Return the storable hex digest of a well-formed credential.

        Raises:
            CredentialError: the credential is malformed.
        """
        kind = credential_kind(credential)
        msg = b"hivemind-credential-v1|" + kind.value.encode() + b"|" + credential.encode()
        return hmac.new(self._pepper, msg, hashlib.sha256).hexdigest()

    def verify(self, credential: str, stored_digest: str) -> bool:
        """Check a presented credential against a stored digest in constant time.

        A malformed credential simply does not match.
        """
        try:
            candidate = self.digest(credential)
        except CredentialError:
            return False
        if not isinstance(stored_digest, str):
            return False
        return hmac.compare_digest(candidate.encode(), stored_digest.encode())


def admin_key_matches(presented: str | None, configured: str | None) -> bool:
    """Constant-time check of the operator's admin key.

    An unset or empty configured key never matches (admin routes stay closed).
    Both sides are hashed first so the comparison does not leak the length.
    """
    if not configured or not presented:
        return False
    a = hashlib.sha256(presented.encode("utf-8")).digest()
    b = hashlib.sha256(configured.encode("utf-8")).digest()
    return hmac.compare_digest(a, b)
