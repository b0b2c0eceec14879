"""Mutants of the protocol core that both mutation self-tests use (loaded by path).

Each function breaks one rule of ``hivemind_proto`` for the duration of a
test through ``monkeypatch``; the client and the hub self-tests list which of
their cases must then FAIL.
"""

from __future__ import annotations

from typing import Any

import pytest
from hivemind_proto import CodecError, HiveMessage, RemoteProtocolError, _connection, _wire1
from hivemind_proto._envelope import HiveMessage as _HM

__all__ = [
    "accepts_cleartext",
    "ignores_bad_frames",
    "inflate_all",
    "rejects_binary",
    "strict_envelope",
]


def rejects_binary(mp: pytest.MonkeyPatch) -> None:
    """Refuse every binary frame."""
    original = _connection.Connection._open

    def open_(self: Any, frame: Any) -> Any:
        if isinstance(frame, bytes):
            raise RemoteProtocolError("mutant: binary frames refused")
        return original(self, frame)

    mp.setattr(_connection.Connection, "_open", open_)


def inflate_all(mp: pytest.MonkeyPatch) -> None:
    """Inflate every wire-1 text block, compressed or not."""
    original = _wire1._text
    mp.setattr(_wire1, "_text", lambda block, compressed, limit: original(block, True, limit))


def strict_envelope(mp: pytest.MonkeyPatch) -> None:
    """Refuse a message whose keys are not exactly the full envelope's."""
    original = _HM.from_dict.__func__  # type: ignore[attr-defined]
    keys = {"msg_type", "payload", "metadata", "route", "node", "target_site_id"}
    keys |= {"target_pubkey", "source_peer"}

    def from_dict(cls: type, obj: Any) -> HiveMessage:
        if isinstance(obj, dict) and set(obj) != keys:
            raise CodecError("strict: unexpected key set")
        return original(cls, obj)

    mp.setattr(_HM, "from_dict", classmethod(from_dict))


def ignores_bad_frames(mp: pytest.MonkeyPatch) -> None:
    """Drop a frame that breaks the protocol instead of closing."""
    original = _connection.Connection.receive_frame

    def receive(self: Any, frame: Any) -> Any:
        saved = (self._state, self._record, self._legacy)
        try:
            return original(self, frame)
        except RemoteProtocolError:
            self._state, self._record, self._legacy = saved
            return []

    mp.setattr(_connection.Connection, "receive_frame", receive)


def accepts_cleartext(mp: pytest.MonkeyPatch) -> None:
    """Accept cleartext messages after keying."""
    mp.setattr(_connection.Connection, "_check_cleartext", lambda self, inp: None)
