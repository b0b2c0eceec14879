"""Client cases of docs/spec §1 (upgrade request, close and reconnect behaviour)."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote

import trio

from .._case import Failed, Level, Outcome, Profile, Skipped, expect
from .._clientctx import ClientContext
from .._peer import PeerClosed
from ._registry import client_case

L, S = Profile.L, Profile.S
MUST = Level.MUST


@client_case(
    "client/1.1/C01",
    "1.1",
    "upgrade request",
    "A client MUST request '/?authorization=<Base64 of useragent:access_key>' (standard "
    "alphabet, padded) and MUST NOT put its password anywhere in the request.",
    MUST,
    L,
)
async def upgrade_request(ctx: ClientContext) -> Outcome:
    conn = await ctx.accept()
    path, _, query = conn.path.partition("?")
    expect(path in ("/", ""), "the path '/'", repr(path))
    values = [p.split("=", 1)[1] for p in query.split("&") if p.startswith("authorization=")]
    expect(len(values) == 1, "exactly one authorization parameter", repr(query)[:80])
    try:
        text = base64.b64decode(unquote(values[0]), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise Failed("standard Base64", repr(values[0])[:80]) from None
    useragent, sep, key = text.partition(":")
    expect(bool(sep and useragent), "useragent:access_key", repr(text)[:80])
    expect(key == ctx.config.client.access_key, "the test access key", "another key")
    password = ctx.config.client.password
    in_headers = any(password in v for _, v in conn.headers)
    expect(password not in conn.path and not in_headers, "no password in the request", "found")
    return Outcome(f"useragent {useragent!r}")


@client_case(
    "client/1.5/C17",
    "1.5",
    "close 1008 is final",
    "A client MUST treat close code 1008 as final: it does not reconnect, or backs off at "
    "least 30 seconds.",
    MUST,
    S,
)
async def policy_close(ctx: ClientContext) -> Outcome:
    session = await ctx.session()
    await session.peer.close(1008, "conformance: refused")
    again = await ctx.server.accept_or_none(max(2.0, ctx.config.quiet_timeout * 2))
    expect(again is None, "no reconnection after 1008", "the client reconnected")
    return Outcome("no reconnection")


@client_case(
    "client/1.5/C18",
    "1.5",
    "re-handshake after reconnecting",
    "After a normal close a client that reconnects MUST run a fresh handshake before sending "
    "anything sealed: no key outlives its connection.",
    MUST,
    S,
)
async def reconnect_rehandshake(ctx: ClientContext) -> Outcome:
    session = await ctx.session()
    await ctx.echo(session)
    await session.peer.close(1000, "conformance: come back")
    conn = await ctx.server.accept_or_none(ctx.config.reply_timeout * 2)
    if conn is None:
        raise Skipped("the client did not reconnect")
    await ctx.opening(conn)
    try:
        frame = await conn.peer.recv(ctx.config.reply_timeout)
    except (PeerClosed, trio.TooSlowError) as exc:
        raise Failed("a cleartext HANDSHAKE on the new connection", repr(exc)) from None
    expect(isinstance(frame, str) and '"msg_type"' in frame, "a cleartext frame", str(frame)[:60])
    material = await _as_material(frame)
    expect("envelope" in material or "noise" in material, "handshake material", repr(material)[:60])
    return Outcome("fresh handshake")


async def _as_material(frame: str | bytes) -> dict[str, object]:
    from hivemind_proto.hazmat import loads

    obj = loads(frame)
    if not isinstance(obj, dict) or obj.get("msg_type") != "shake":
        raise Failed("a HANDSHAKE", repr(frame)[:60])
    payload = obj.get("payload")
    return payload if isinstance(payload, dict) else {}
