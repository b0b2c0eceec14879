"""Per-connection settings for each role.

They are frozen values checked when built: a hub connection needs at least one
way to agree keys, a satellite needs a password, sizes are positive.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, final

from ._errors import LocalProtocolError
from ._negotiation import HUB_CIPHERS, HUB_ENCODINGS
from ._noise import NoisePublicKey, NoiseSuite, StaticKeypair
from ._types import Cipher, TextEncoding

#: Largest websocket message accepted by default (the tornado default upstream).
DEFAULT_MAX_FRAME: Final = 10 * 1024 * 1024

#: Our satellites' preference: the fastest encodings first, never JSON-Z85P.
SATELLITE_ENCODINGS: Final = (
    TextEncoding.JSON_B64,
    TextEncoding.JSON_URLSAFE_B64,
    TextEncoding.JSON_HEX,
    TextEncoding.JSON_B32,
    TextEncoding.JSON_Z85B,
    TextEncoding.JSON_B91,
)
SATELLITE_CIPHERS: Final = (Cipher.CHACHA20_POLY1305, Cipher.AES_GCM)
NOISE_SUITES: Final = (NoiseSuite.CHACHAPOLY, NoiseSuite.AESGCM)


@final
@dataclass(frozen=True, slots=True)
class NoiseIdentity:
    """What one side needs for profile N.

    Args:
        static: our static X25519 key pair.
        pinned_peer: the peer's static key if pinned (enables KKpsk0 and is
            enforced after XXpsk2).
        psk: the precomputed 32-byte PSK; derived from the password and the
            hub's node id when absent (argon2id, deliberately slow).
        suites: acceptable suites, preferred first.
    """

    static: StaticKeypair
    pinned_peer: NoisePublicKey | None = None
    psk: bytes | None = field(default=None, repr=False)
    suites: tuple[NoiseSuite, ...] = NOISE_SUITES

    def __post_init__(self) -> None:
        if self.psk is not None and len(self.psk) != 32:
            raise LocalProtocolError("a Noise PSK is 32 bytes")
        if not self.suites:
            raise LocalProtocolError("at least one Noise suite is needed")


@final
@dataclass(frozen=True, slots=True)
class HubSettings:
    """The hub's side of one connection.

    Args:
        hello: the hub HELLO payload ``{pubkey, peer, node_id}``.
        password: the client's password (legacy handshake and Noise PSK).
        crypto_key: the client's deprecated pre-shared key, if any.
        allowed_ciphers: ciphers the hub accepts.
        allowed_encodings: text encodings the hub accepts.
        binarize: whether the hub offers WIRE-1 frames.
        noise: the hub's Noise identity; None disables profile N.
        legacy_allowed: False refuses every legacy handshake (Noise only).
        max_frame_bytes: largest inbound websocket message.
    """

    hello: Mapping[str, Any]
    password: str | None = field(default=None, repr=False)
    crypto_key: str | None = field(default=None, repr=False)
    allowed_ciphers: tuple[Cipher, ...] = HUB_CIPHERS
    allowed_encodings: tuple[TextEncoding, ...] = HUB_ENCODINGS
    binarize: bool = False
    noise: NoiseIdentity | None = None
    legacy_allowed: bool = True
    max_frame_bytes: int = DEFAULT_MAX_FRAME

    def __post_init__(self) -> None:
        if not isinstance(self.hello.get("node_id"), str):
            raise LocalProtocolError("the hub HELLO needs a string node_id")
        if not self.password and not self.crypto_key:
            raise LocalProtocolError("a client needs a password or a pre-shared key")
        if self.noise is not None and not self.password:
            raise LocalProtocolError("Noise needs the client's password for its PSK")
        if not self.legacy_allowed and self.noise is None:
            raise LocalProtocolError("with legacy handshakes refused, Noise must be enabled")
        if not self.allowed_ciphers or not self.allowed_encodings:
            raise LocalProtocolError("allowed ciphers and encodings must not be empty")
        _check_size(self.max_frame_bytes)


@final
@dataclass(frozen=True, slots=True)
class SatelliteSettings:
    """The satellite's side of one connection.

    Args:
        password: the shared password.
        hello: our HELLO payload ``{pubkey, session, site_id}``; ``session``
            must carry a ``session_id`` other than ``default``.
        crypto_key: a deprecated pre-shared key, used only if the hub offers
            no password handshake.
        ciphers: ciphers we offer, preferred first.
        encodings: encodings we offer, preferred first.
        binarize: whether we accept WIRE-1 frames if the hub offers them.
        noise: our Noise identity; None means legacy only.
        require_noise: refuse hubs that do not offer Noise.
        max_frame_bytes: largest inbound websocket message.
    """

    password: str = field(repr=False)
    hello: Mapping[str, Any]
    crypto_key: str | None = field(default=None, repr=False)
    ciphers: tuple[Cipher, ...] = SATELLITE_CIPHERS
    encodings: tuple[TextEncoding, ...] = SATELLITE_ENCODINGS
    binarize: bool = False
    noise: NoiseIdentity | None = None
    require_noise: bool = False
    max_frame_bytes: int = DEFAULT_MAX_FRAME

    def __post_init__(self) -> None:
        if not self.password:
            raise LocalProtocolError("a satellite needs a password")
        session = self.hello.get("session")
        if not isinstance(session, Mapping) or session.get("session_id") in (None, "default"):
            raise LocalProtocolError("the HELLO session needs a session_id other than 'default'")
        if self.require_noise and self.noise is None:
            raise LocalProtocolError("require_noise needs a Noise identity")
        if not self.ciphers or not self.encodings:
            raise LocalProtocolError("offered ciphers and encodings must not be empty")
        _check_size(self.max_frame_bytes)


def _check_size(value: int) -> None:
    if not isinstance(value, int) or value < 1024:
        raise LocalProtocolError("max_frame_bytes must be an integer of at least 1024")
