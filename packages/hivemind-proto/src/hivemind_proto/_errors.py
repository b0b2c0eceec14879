"""Errors raised by the protocol core.

Theory of operation: blame decides the class. ``LocalProtocolError`` means the
caller misused the API (sent an event the state machine does not allow, built
an impossible message); ``RemoteProtocolError`` means the peer sent something
invalid and carries the websocket close code to answer with. Any error moves a
``Connection`` into its ERROR state: the protocol fails closed.

``DecryptionError`` deliberately says nothing about *why* authentication or
decryption failed (wrong key, flipped bit, truncated frame, replayed counter):
detail in crypto errors is an oracle.
"""

from __future__ import annotations

from enum import IntEnum


class CloseCode(IntEnum):
    """WebSocket close codes the protocol asks for."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013


class ProtocolError(Exception):
    """Base class of every error the protocol core raises on purpose."""


class LocalProtocolError(ProtocolError):
    """The caller asked for something the protocol forbids."""


class RemoteProtocolError(ProtocolError):
    """The peer violated the protocol.

    Attributes:
        close_code: the websocket close code to answer with.
    """

    def __init__(self, message: str, close_code: int = CloseCode.POLICY_VIOLATION) -> None:
        super().__init__(message)
        self.close_code = int(close_code)


class DecryptionError(RemoteProtocolError):
    """A frame failed authentication. The message never varies."""

    def __init__(self) -> None:
        super().__init__("decryption failed", CloseCode.POLICY_VIOLATION)


class CodecError(RemoteProtocolError):
    """Bytes or text that do not decode as the expected format."""

    def __init__(self, message: str) -> None:
        super().__init__(message, CloseCode.UNSUPPORTED_DATA)
