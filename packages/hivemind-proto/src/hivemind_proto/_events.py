"""Events a ``Connection`` reports to its owner.

Events are frozen values that validate when they are built, so an event that
could not have come off the wire cannot exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, final

from ._envelope import HiveMessage
from ._errors import LocalProtocolError
from ._types import Cipher, MessageType, TextEncoding


class Profile(Enum):
    """How a connection's keys were agreed."""

    #: hSub + PBKDF2 password handshake, per-frame AEAD with random nonces.
    LEGACY_PASSWORD = "legacy-password"
    #: the deprecated pre-shared 16-character ``crypto_key`` (AES-128-GCM).
    LEGACY_PRESHARED = "legacy-preshared"
    #: v3 Noise (XXpsk2 or KKpsk0) with counter nonces.
    NOISE = "noise"


class Event:
    """Base class of connection events."""

    __slots__ = ()


@final
@dataclass(frozen=True, slots=True)
class HelloReceived(Event):
    """The peer's HELLO.

    On a satellite it is the hub's ``{pubkey, peer, node_id}``; on a hub it is
    the satellite's ``{pubkey, session, site_id}``.
    """

    payload: Mapping[str, Any]
    encrypted: bool

    def __post_init__(self) -> None:
        if not isinstance(self.payload, Mapping):
            raise LocalProtocolError("a HELLO payload is an object")


@final
@dataclass(frozen=True, slots=True)
class HandshakeComplete(Event):
    """Keys are agreed (or re-agreed, when ``rekey`` is true).

    ``remote_static`` is the peer's Noise static public key (hex) for
    profile N, which the owner pins or checks against its pin.
    """

    profile: Profile
    cipher: Cipher | None = None
    encoding: TextEncoding | None = None
    binarize: bool = False
    noise_protocol: str | None = None
    remote_static: str | None = None
    rekey: bool = False


@final
@dataclass(frozen=True, slots=True)
class MessageReceived(Event):
    """An authenticated HiveMessage other than HELLO and HANDSHAKE."""

    message: HiveMessage
    encrypted: bool = True

    def __post_init__(self) -> None:
        if self.message.msg_type in (MessageType.HELLO, MessageType.HANDSHAKE):
            raise LocalProtocolError("HELLO and HANDSHAKE are reported by their own events")


@final
@dataclass(frozen=True, slots=True)
class ConnectionClosed(Event):
    """The connection was closed locally; nothing more will be sent or read."""

    code: int
