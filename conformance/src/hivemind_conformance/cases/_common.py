"""Checks shared by hub cases: "expect close" and friends (docs/spec §1.5)."""

from __future__ import annotations

from typing import Any, Final

import trio
from hivemind_proto import derive_psk
from hivemind_proto.hazmat import loads

from .._case import Failed, Outcome
from .._hubctx import HubContext
from .._peer import FramePeer, PeerClosed

#: Close codes that count as a close (1006: the TCP stream just ended).
CLOSE_CODES: Final = frozenset({1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1011, None})


def msg_types(frames: list[str | bytes]) -> list[str]:
    """The cleartext ``msg_type`` values among ``frames`` (binary frames as 'binary')."""
    kinds = []
    for frame in frames:
        if isinstance(frame, bytes):
            kinds.append("binary")
            continue
        try:
            obj: Any = loads(frame)
        except Exception:
            kinds.append("garbage")
            continue
        kinds.append(str(obj.get("msg_type", "encrypted")) if isinstance(obj, dict) else "garbage")
    return kinds


def has_envelope(frames: list[str | bytes]) -> bool:
    """Whether a cleartext HANDSHAKE carrying an ``envelope`` is among ``frames``."""
    for frame in frames:
        if isinstance(frame, str) and '"envelope"' in frame:
            try:
                obj = loads(frame)
            except Exception:
                continue
            payload = obj.get("payload") if isinstance(obj, dict) else None
            if isinstance(payload, dict) and payload.get("envelope"):
                return True
    return False


async def expect_close(
    peer: FramePeer, *, code: int | None = None, forbid_envelope: bool = True
) -> int | None:
    """Wait for the peer to close; fail on a HANDSHAKE envelope or a wrong code.

    Returns:
        The close code.
    """
    try:
        got, frames = await peer.wait_closed(peer.close_timeout)
    except trio.TooSlowError:
        raise Failed(f"a close within {peer.close_timeout:g} s", "still open") from None
    if forbid_envelope and has_envelope(frames):
        raise Failed("no HANDSHAKE envelope before the close", "an envelope was sent")
    if code is not None and got != code:
        raise Failed(f"close code {code}", f"close code {got}")
    return got


async def dial_expect_refusal(ctx: HubContext, query: str, *, code: int | None = None) -> Outcome:
    """Dial with ``query``; the hub must close without ever sending a HELLO."""
    try:
        peer = await ctx.dial(query)
    except PeerClosed:
        if code is not None:
            raise Failed(f"close code {code}", "the upgrade was refused (no websocket)") from None
        return Outcome("the upgrade was refused")
    try:
        got, frames = await peer.wait_closed(peer.close_timeout)
    except trio.TooSlowError:
        raise Failed(f"a close within {peer.close_timeout:g} s", "still open") from None
    if "hello" in msg_types(frames):
        raise Failed("no HELLO frame", "the hub sent a HELLO")
    if code is not None and got != code:
        raise Failed(f"close code {code}", f"close code {got}")
    return Outcome(f"closed with code {got}")


async def assert_quiet(
    peer: FramePeer, seconds: float, what: str, *, closed_ok: bool = True
) -> bool:
    """Nothing may arrive for ``seconds``; returns True when the peer closed instead."""
    try:
        frame = await peer.recv_or_none(seconds)
    except PeerClosed:
        if closed_ok:
            return True
        raise Failed(f"the connection to stay open ({what})", "it closed") from None
    if frame is not None:
        raise Failed(f"nothing ({what})", f"a frame: {str(frame)[:80]!r}")
    return False


async def no_reply(ctx: HubContext, session: Any, kind: str, what: str) -> bool:
    """No ``<kind>.reply`` may reach ``session`` within the quiet timeout.

    Returns:
        True when the connection closed instead (which also delivers nothing).
    """
    try:
        reply = await ctx.wait_reply(session, kind, ctx.config.quiet_timeout)
    except PeerClosed:
        return True
    if reply is not None:
        raise Failed(f"no {kind}.reply ({what})", "a reply arrived")
    return False


_PSKS: dict[tuple[str, str], bytes] = {}
_PSK_LOCK: trio.lowlevel.RunVar[trio.Lock] = trio.lowlevel.RunVar("conformance_psk_lock")


async def cached_psk(password: str, node_id: str) -> bytes:
    """The Noise PSK (argon2id, in a thread), derived once per password and hub."""
    try:
        lock = _PSK_LOCK.get()
    except LookupError:
        lock = trio.Lock()
        _PSK_LOCK.set(lock)
    key = (password, node_id)
    async with lock:
        if key not in _PSKS:
            _PSKS[key] = await trio.to_thread.run_sync(derive_psk, password, node_id)
    return _PSKS[key]
