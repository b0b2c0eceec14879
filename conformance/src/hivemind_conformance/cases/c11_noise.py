"""Client cases of docs/spec §3.11 (profile N, the harness as Noise responder)."""

from __future__ import annotations

import os
from typing import Any, Final

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

from .._case import Failed, Level, Outcome, Profile, expect
from .._clientctx import NODE_ID, ClientContext, need_noise
from .._peer import Accepted, NoiseKeys, PeerClosed
from ._common import cached_psk
from ._registry import client_case

N = Profile.N
MUST = Level.MUST
_STATIC: Final = StaticKeypair.generate(os.urandom)


def _noise_offer(ctx: ClientContext) -> dict[str, Any]:
    noise = {
        "patterns": [NoisePattern.XXpsk2.value],
        "suites": [NoiseSuite.CHACHAPOLY.value, NoiseSuite.AESGCM.value],
    }
    return ctx.offer(noise=noise, max_protocol_version=3)


async def _respond(
    ctx: ClientContext, conn: Accepted, offer_for_prologue: dict[str, Any], first: dict[str, Any]
) -> NoiseHandshake:
    pattern = NoisePattern(first.get("pattern"))
    suite = NoiseSuite(first.get("suite"))
    expect(pattern is NoisePattern.XXpsk2, "XXpsk2", pattern.value)
    psk = await cached_psk(ctx.config.client.password, NODE_ID)
    hs = NoiseHandshake(
        pattern,
        suite,
        initiator=False,
        static=_STATIC,
        psk=psk,
        prologue=noise_prologue(ctx.hub_hello(), offer_for_prologue, protocol_name(pattern, suite)),
        rng=ctx.rng,
    )
    hs.read_message(bytes.fromhex(str(first.get("msg"))))
    reply = {"encoding": "msgpack", "payload_format": "json"}
    msg2 = hs.write_message(canonical_json(reply)).hex()
    await conn.peer.send_plain(HiveMessage(MessageType.HANDSHAKE, {"noise": {"msg": msg2}}))
    return hs


async def _noise_session(ctx: ClientContext) -> tuple[Accepted, NoiseKeys]:
    conn = await ctx.accept()
    offer = _noise_offer(ctx)
    await ctx.opening(conn, offer)
    first = need_noise(await ctx.read_material(conn))
    hs = await _respond(ctx, conn, offer, first)
    third = need_noise(await ctx.read_material(conn))
    try:
        hs.read_message(bytes.fromhex(str(third.get("msg"))))
    except Exception as exc:
        raise Failed("Noise message 3 to authenticate", type(exc).__name__) from None
    keys = NoiseKeys(hs.split())
    frame = await conn.peer.recv(ctx.config.reply_timeout)
    hello = keys.open(frame)
    expect(hello.msg_type is MessageType.HELLO, "the client HELLO first", hello.msg_type.value)
    return conn, keys


async def _noise_echo(
    ctx: ClientContext, conn: Accepted, keys: NoiseKeys, data: dict[str, Any]
) -> bool:
    await conn.peer.send(keys.seal(ctx.echo_message(data)))
    deadline = trio.current_time() + ctx.config.reply_timeout
    while (left := deadline - trio.current_time()) > 0:
        try:
            frame = await conn.peer.recv(left)
        except trio.TooSlowError:
            return False
        expect(isinstance(frame, bytes), "binary frames after Noise", "a text frame")
        message = keys.open(frame)
        if isinstance(message.payload, dict) and message.payload.get("data") == data:
            return True
    return False


@client_case(
    "client/3.11/CN01",
    "3.11",
    "Noise XXpsk2 session",
    "A client offered Noise that speaks it MUST complete XXpsk2, then send its HELLO and every "
    "later message as binary Noise transport frames.",
    MUST,
    N,
)
async def noise_session(ctx: ClientContext) -> Outcome:
    conn, keys = await _noise_session(ctx)
    ok = await _noise_echo(ctx, conn, keys, {"noise": True})
    expect(ok, "the BUS echoed over Noise", "no echo")
    return Outcome("echo over Noise")


@client_case(
    "client/3.11/C22",
    "3.11",
    "tampered cleartext negotiation",
    "A client MUST abort the Noise handshake when the hub's cleartext offer it received "
    "differs from the one the hub bound into its prologue.",
    MUST,
    N,
)
async def tampered_offer(ctx: ClientContext) -> Outcome:
    conn = await ctx.accept()
    original = _noise_offer(ctx)
    tampered = dict(original, encodings=list(reversed(original["encodings"])))
    await ctx.opening(conn, tampered)
    first = need_noise(await ctx.read_material(conn))
    try:
        await _respond(ctx, conn, original, first)
    except Failed:
        raise
    except Exception:
        pass  # expected: message 1 was bound to the offer the client saw
    else:
        raise Failed("message 1 bound to the offer the client received", "it matched ours")
    forged = ctx.rng(32 + 48 + 16).hex()
    await conn.peer.send_plain(HiveMessage(MessageType.HANDSHAKE, {"noise": {"msg": forged}}))
    try:
        code, frames = await conn.peer.wait_closed(conn.peer.close_timeout)
    except trio.TooSlowError:
        raise Failed("the client to abort", "still connected") from None
    expect(not frames, "nothing after the failed handshake", f"{len(frames)} frames")
    return Outcome(f"aborted (code {code})")


@client_case(
    "client/3.11/CN02",
    "3.11",
    "replayed Noise frame",
    "A client MUST treat a replayed Noise transport frame as fatal.",
    MUST,
    N,
)
async def noise_replay(ctx: ClientContext) -> Outcome:
    conn, keys = await _noise_session(ctx)
    data = {"replay": ctx.rng(4).hex()}
    frame = keys.seal(ctx.echo_message(data))
    await conn.peer.send(frame)
    await conn.peer.send(frame)
    echoes = 0
    try:
        with trio.move_on_after(ctx.config.reply_timeout):
            while True:
                got = await conn.peer.recv(ctx.config.reply_timeout)
                message = keys.open(got)
                echoes += isinstance(message.payload, dict) and message.payload.get("data") == data
    except PeerClosed:
        pass
    expect(echoes <= 1, "at most one echo", f"{echoes}")
    expect(conn.peer.closed, "the client to close after the replay", "still connected")
    return Outcome("closed after the replay")
