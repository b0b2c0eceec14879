"""Hub cases of docs/spec §1 (transport, credentials, limits) and §6.3 (revocation)."""

from __future__ import annotations

import base64
import contextlib

import trio

from .._case import Failed, Level, Outcome, Profile, expect
from .._hubctx import ECHO, HubContext, reply_data
from .._peer import PeerClosed
from ._common import dial_expect_refusal, no_reply
from ._registry import hub_case

L, S = Profile.L, Profile.S
MUST, SHOULD = Level.MUST, Level.SHOULD


@hub_case(
    "hub/1.1/H01",
    "1.1",
    "unknown access key",
    "A hub MUST close a connection whose access key names no client, without sending a HELLO.",
    MUST,
    L,
)
async def unknown_key(ctx: HubContext) -> Outcome:
    return await dial_expect_refusal(ctx, ctx.auth_query(access_key="unknown-" + ctx.rng(8).hex()))


_BAD_AUTH = {
    "missing": "",
    "not Base64": "authorization=%%%not-base64%%%",
    "no colon": "authorization=" + base64.b64encode(b"no-colon-here").decode(),
}


@hub_case(
    "hub/1.1/H02",
    "1.1",
    "missing or malformed authorization",
    "A hub MUST close a connection whose authorization value is missing, is not Base64 or "
    "has no ':', without sending a HELLO.",
    MUST,
    L,
)
async def malformed_auth(ctx: HubContext) -> Outcome:
    notes = []
    for name, query in _BAD_AUTH.items():
        outcome = await dial_expect_refusal(ctx, query)
        notes.append(f"{name}: {outcome.note}")
    return Outcome("; ".join(notes))


@hub_case(
    "hub/1.1/H02-S",
    "1.1",
    "malformed authorization closes with 1008",
    "A hardened hub MUST close a connection with a malformed authorization with code 1008.",
    MUST,
    S,
)
async def malformed_auth_code(ctx: HubContext) -> Outcome:
    for query in _BAD_AUTH.values():
        await dial_expect_refusal(ctx, query, code=1008)
    return Outcome("closed with 1008 each time")


@hub_case(
    "hub/1.1/H02b",
    "1.1",
    "percent-encoded authorization",
    "A hub SHOULD accept an authorization value whose Base64 text is percent-encoded.",
    SHOULD,
    S,
)
async def percent_encoded(ctx: HubContext) -> Outcome:
    query = ctx.auth_query().replace("=", "%3D").replace("authorization%3D", "authorization=", 1)
    peer = await ctx.dial(query)
    hello, _ = await ctx.opening(peer)
    return Outcome(f"HELLO received (node_id {hello.get('node_id')!r})")


@hub_case(
    "hub/1.1/X01",
    "1.1",
    "oversized authorization",
    "A hub MUST bound the credential it parses: an authorization value of 6000 characters is "
    "refused without a HELLO.",
    MUST,
    S,
)
async def huge_auth(ctx: HubContext) -> Outcome:
    return await dial_expect_refusal(ctx, "authorization=" + "QUFB" * 1500)


@hub_case(
    "hub/6.3/H17",
    "6.3",
    "the tombstone access key 'revoked'",
    "A hub MUST refuse the access key 'revoked' (the tombstone of deleted clients).",
    MUST,
    S,
)
async def revoked_key(ctx: HubContext) -> Outcome:
    return await dial_expect_refusal(ctx, ctx.auth_query(access_key="revoked"))


@hub_case(
    "hub/1.2/H46",
    "1.2",
    "frame larger than the hub's limit",
    "A hub MUST close with code 1009 a connection that sends a websocket message larger than "
    "its configured maximum.",
    MUST,
    S,
)
async def oversize_frame(ctx: HubContext) -> Outcome:
    peer = await ctx.dial()
    await ctx.opening(peer)
    with contextlib.suppress(PeerClosed):
        await peer.send(b"\x00" * (ctx.config.max_frame_bytes + 1))
    try:
        code, _ = await peer.wait_closed(peer.close_timeout)
    except trio.TooSlowError:
        raise Failed("close code 1009", "the connection stayed open") from None
    expect(code == 1009, "close code 1009", f"close code {code}")
    return Outcome("closed with 1009")


@hub_case(
    "hub/1.3/H48",
    "1.3",
    "two sessions on one credential",
    "A hub MUST keep two connections of the same client with different session ids apart: "
    "each is its own peer and replies are routed per session.",
    MUST,
    L,
)
async def two_sessions(ctx: HubContext) -> Outcome:
    first = await ctx.session()
    second = await ctx.session()
    reply_a = await ctx.echo(first, {"who": "a"})
    reply_b = await ctx.echo(second, {"who": "b"})
    expect(reply_data(reply_a).get("data") == {"who": "a"}, "A's own reply", repr(reply_a.payload))
    expect(reply_data(reply_b).get("data") == {"who": "b"}, "B's own reply", repr(reply_b.payload))
    peer_a = reply_data(reply_a).get("context", {}).get("peer")
    peer_b = reply_data(reply_b).get("context", {}).get("peer")
    expect(peer_a != peer_b, "two distinct peers", f"both {peer_a!r}")
    await no_reply(ctx, first, ECHO, "B's reply must not reach A")
    return Outcome(f"peers {peer_a!r} and {peer_b!r}")
