"""X25519 keys for Noise: a public-key value type and a static keypair.

Theory of operation: keys are classes, never loose ``bytes``, so a public key
cannot be passed where a private one is expected and a private key never
reaches a log through ``repr``. A ``NoisePublicKey`` always holds 32 bytes that
are not a low-order point: a peer cannot force a predictable shared secret.
Randomness comes from the caller's ``rng`` (the protocol core owns no RNG).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import final

from .._errors import LocalProtocolError
from ._primitives import DHLEN, dh, dh_public, is_low_order

#: Source of randomness: returns exactly ``n`` random bytes.
Rng = Callable[[int], bytes]


def random_bytes(rng: Rng, n: int) -> bytes:
    """Call ``rng`` and check that it returned ``n`` bytes.

    Raises:
        LocalProtocolError: ``rng`` returned something else.
    """
    data = rng(n)
    if not isinstance(data, bytes) or len(data) != n:
        raise LocalProtocolError(f"rng must return exactly {n} bytes")
    return data


@final
class NoisePublicKey:
    """A 32-byte X25519 public key.

    Equality is constant-time. ``bytes(key)`` gives the raw 32 bytes.
    """

    __slots__ = ("_raw",)

    def __init__(self, raw: bytes) -> None:
        """Wrap raw key bytes.

        Args:
            raw: the 32-byte X25519 public value.

        Raises:
            LocalProtocolError: ``raw`` is not 32 bytes or is a low-order point.
        """
        if not isinstance(raw, bytes) or len(raw) != DHLEN:
            raise LocalProtocolError("a Noise public key is 32 bytes")
        if is_low_order(raw):
            raise LocalProtocolError("a low-order point is not a valid Noise public key")
        self._raw = raw

    @classmethod
    def _trusted(cls, raw: bytes) -> NoisePublicKey:
        """Wrap a value computed locally from a private key (no checks needed)."""
        key = object.__new__(cls)
        key._raw = raw
        return key

    @classmethod
    def from_hex(cls, text: str) -> NoisePublicKey:
        """Parse 64 hexadecimal digits.

        Raises:
            LocalProtocolError: ``text`` is not a valid key in hex.
        """
        try:
            raw = bytes.fromhex(text)
        except (ValueError, TypeError):
            raise LocalProtocolError("a Noise public key in hex is 64 hex digits") from None
        return cls(raw)

    def hex(self) -> str:
        """The key as 64 lowercase hexadecimal digits."""
        return self._raw.hex()

    def __bytes__(self) -> bytes:
        return self._raw

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NoisePublicKey):
            return NotImplemented
        return hmac.compare_digest(self._raw, other._raw)

    def __hash__(self) -> int:
        return hash(self._raw)

    def __repr__(self) -> str:
        return f"NoisePublicKey({self._raw.hex()!r})"


@final
class StaticKeypair:
    """A long-term X25519 keypair. Its ``repr`` shows only the public key."""

    __slots__ = ("_private", "_public")

    def __init__(self, private: bytes) -> None:
        """Build a keypair from its private key (see ``from_private_bytes``).

        Raises:
            LocalProtocolError: ``private`` is not 32 bytes.
        """
        if not isinstance(private, bytes) or len(private) != DHLEN:
            raise LocalProtocolError("a Noise private key is 32 bytes")
        self._private = private
        self._public = NoisePublicKey._trusted(dh_public(private))

    @classmethod
    def generate(cls, rng: Rng) -> StaticKeypair:
        """A fresh keypair from 32 bytes of ``rng``.

        Raises:
            LocalProtocolError: ``rng`` did not return 32 bytes.
        """
        return cls(random_bytes(rng, DHLEN))

    @classmethod
    def from_private_bytes(cls, private: bytes) -> StaticKeypair:
        """Rebuild a keypair from the 32 bytes ``private_bytes`` returned.

        Raises:
            LocalProtocolError: ``private`` is not 32 bytes.
        """
        return cls(private)

    @property
    def public(self) -> NoisePublicKey:
        """The public half."""
        return self._public

    def private_bytes(self) -> bytes:
        """The raw 32-byte private key, for storing it. Keep it secret."""
        return self._private

    def dh(self, public: NoisePublicKey) -> bytes:
        """X25519 with a peer's public key (used by the handshake)."""
        return dh(self._private, bytes(public))

    def __repr__(self) -> str:
        return f"StaticKeypair(public={self._public.hex()!r})"
