"""Hub cases of docs/spec §3.11 (profile N: the v3 Noise handshake and transport)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import trio
from hivemind_proto import (
    HiveMessage,
    MessageType,
    NoisePattern,
    NoiseSuite,
    StaticKeypair,
    canonical_json,
    noise_prologue,
)
from hivemind_proto.hazmat import NoiseHandshake, protocol_name

from .._case import Failed, Level, Outcome, Profile, Skipped, expect
from .._hubctx import ECHO, HubContext, reply_data
from .._peer import FramePeer, NoiseKeys, PeerClosed
from ._common import cached_psk, expect_close
from ._registry import hub_case

N = Profile.N
MUST = Level.MUST


@dataclass(slots=True)
class NoiseSession:
    """A Noise session with the hub."""

    peer: FramePeer
    keys: NoiseKeys
    session_id: str


def _pick(offer: dict[str, Any]) -> NoiseSuite:
    noise = offer.get("noise")
    if not isinstance(noise, dict):
        raise Skipped("the hub does not offer the Noise handshake")
    if NoisePattern.XXpsk2.value not in (noise.get("patterns") or []):
        raise Skipped("the hub does not offer XXpsk2")
    for suite in (NoiseSuite.CHACHAPOLY, NoiseSuite.AESGCM):
        if suite.value in (noise.get("suites") or []):
            return suite
    raise Skipped("the hub offers no Noise suite the suite speaks")


async def _first_message(ctx: HubContext, password: str) -> tuple[FramePeer, NoiseHandshake]:
    peer = await ctx.dial()
    hello, offer = await ctx.opening(peer)
    suite = _pick(offer)
    psk = await cached_psk(password, str(hello.get("node_id")))
    name = protocol_name(NoisePattern.XXpsk2, suite)
    hs = NoiseHandshake(
        NoisePattern.XXpsk2,
        suite,
        initiator=True,
        static=StaticKeypair.generate(ctx.rng),
        psk=psk,
        prologue=noise_prologue(hello, offer, name),
        rng=ctx.rng,
    )
    request = {"binarize": False, "encodings": ["JSON-HEX"], "payload_formats": ["json"]}
    msg1 = hs.write_message(canonical_json(request)).hex()
    noise = {"pattern": NoisePattern.XXpsk2.value, "suite": suite.value, "msg": msg1}
    await peer.send_plain(HiveMessage(MessageType.HANDSHAKE, {"noise": noise}))
    return peer, hs


async def _second_message(ctx: HubContext, peer: FramePeer) -> bytes:
    payload = await ctx.read_response(peer)
    noise = payload.get("noise")
    if not isinstance(noise, dict) or not isinstance(noise.get("msg"), str):
        raise Failed("a HANDSHAKE with noise.msg", repr(payload)[:100])
    return bytes.fromhex(noise["msg"])


async def noise_session(ctx: HubContext) -> NoiseSession:
    """Run XXpsk2 with the test client's password and send our HELLO."""
    peer, hs = await _first_message(ctx, ctx.config.client.password)
    try:
        hs.read_message(await _second_message(ctx, peer))
    except Failed:
        raise
    except Exception as exc:
        raise Failed("Noise message 2 to authenticate", type(exc).__name__) from None
    msg3 = hs.write_message(b"").hex()
    await peer.send_plain(HiveMessage(MessageType.HANDSHAKE, {"noise": {"msg": msg3}}))
    keys = NoiseKeys(hs.split())
    sid = ctx.session_id()
    hello = {"pubkey": None, "session": {"session_id": sid, "site_id": "conformance"}}
    await peer.send(keys.seal(HiveMessage(MessageType.HELLO, {**hello, "site_id": "conformance"})))
    return NoiseSession(peer, keys, sid)


async def noise_echo(ctx: HubContext, session: NoiseSession, data: dict[str, Any]) -> HiveMessage:
    """Round-trip one echo request over Noise."""
    request = ctx.echo_message(None, data)
    await session.peer.send(session.keys.seal(request))
    deadline = trio.current_time() + ctx.config.reply_timeout
    while (left := deadline - trio.current_time()) > 0:
        try:
            frame = await session.peer.recv(left)
        except (PeerClosed, trio.TooSlowError) as exc:
            raise Failed("an echo reply over Noise", repr(exc)) from None
        expect(isinstance(frame, bytes), "binary frames after the Noise handshake", "text")
        try:
            message = session.keys.open(frame)
        except Exception as exc:
            raise Failed("frames that open with the Noise keys", type(exc).__name__) from None
        if message.bus_type == ECHO + ".reply":
            return message
    raise Failed("an echo reply over Noise", "none")


@hub_case(
    "hub/3.11/N01",
    "3.11",
    "Noise XXpsk2 session",
    "A hub offering Noise MUST complete XXpsk2 with a client that knows the password; after "
    "it, every frame is binary and carries one Noise transport message.",
    MUST,
    N,
)
async def noise_ok(ctx: HubContext) -> Outcome:
    session = await noise_session(ctx)
    reply = await noise_echo(ctx, session, {"noise": True})
    expect(reply_data(reply).get("data") == {"noise": True}, "the echo", repr(reply.payload))
    return Outcome("echo over Noise")


@hub_case(
    "hub/3.11/H50",
    "3.11",
    "Noise with a wrong password",
    "A hub MUST abort a Noise handshake whose final message does not authenticate (a client "
    "without the password) and close with code 1008.",
    MUST,
    N,
)
async def noise_wrong_password(ctx: HubContext) -> Outcome:
    peer, hs = await _first_message(ctx, "not-" + ctx.config.client.password)
    msg2 = await _second_message(ctx, peer)
    try:
        hs.read_message(msg2)
        raise Failed("message 2 to fail for a wrong password", "it authenticated")
    except Failed:
        raise
    except Exception:
        pass  # expected: we cannot read it, so forge message 3
    forged = ctx.rng(32 + 16 + 16).hex()
    await peer.send_plain(HiveMessage(MessageType.HANDSHAKE, {"noise": {"msg": forged}}))
    await expect_close(peer, code=1008, forbid_envelope=False)
    return Outcome("closed with 1008")


async def _expect_fatal(ctx: HubContext, session: NoiseSession, what: str) -> Outcome:
    try:
        reply = await noise_echo(ctx, session, {"after": what})
    except (Failed, PeerClosed):  # closed before or while we probed: as it must
        reply = None
    if reply is not None:
        raise Failed(f"the connection closed after {what}", "it kept working")
    if not session.peer.closed:
        await expect_close(session.peer, forbid_envelope=False)
    return Outcome(f"closed after {what}")


@hub_case(
    "hub/3.11/N02",
    "3.11",
    "replayed Noise frame",
    "A replayed Noise transport frame MUST be fatal: the hub closes and delivers nothing more.",
    MUST,
    N,
)
async def noise_replay(ctx: HubContext) -> Outcome:
    session = await noise_session(ctx)
    frame = session.keys.seal(ctx.echo_message(None, {"n": 1}))
    await session.peer.send(frame)
    await session.peer.send(frame)
    seen = 0
    with trio.move_on_after(ctx.config.reply_timeout):
        try:
            while True:
                message = session.keys.open(await session.peer.recv(ctx.config.reply_timeout))
                seen += message.bus_type == ECHO + ".reply"
        except Exception:
            pass
    expect(seen <= 1, "at most one reply", f"{seen} replies")
    expect(session.peer.closed, "the connection closed after the replay", "still open")
    return Outcome("closed after the replay")


@hub_case(
    "hub/3.11/N03",
    "3.11",
    "reordered Noise frames",
    "Noise transport frames delivered out of order MUST be fatal.",
    MUST,
    N,
)
async def noise_reorder(ctx: HubContext) -> Outcome:
    session = await noise_session(ctx)
    first = session.keys.seal(ctx.echo_message(None, {"n": 1}))
    second = session.keys.seal(ctx.echo_message(None, {"n": 2}))
    await session.peer.send(second)
    with contextlib.suppress(PeerClosed):  # the hub may close on ``second``, as it must
        await session.peer.send(first)
    return await _expect_fatal(ctx, session, "reordering")


@hub_case(
    "hub/3.11/N04",
    "3.11",
    "text frame after Noise",
    "After a Noise handshake a hub MUST refuse any text frame, cleartext HiveMessages included.",
    MUST,
    N,
)
async def noise_text(ctx: HubContext) -> Outcome:
    session = await noise_session(ctx)
    await session.peer.send_plain(ctx.echo_message(None, {"clear": True}))
    return await _expect_fatal(ctx, session, "a cleartext frame")
