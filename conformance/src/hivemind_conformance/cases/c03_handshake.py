"""Client cases of docs/spec §3 (password handshake, negotiation, client HELLO)."""

from __future__ import annotations

import trio
from hivemind_proto import Cipher, TextEncoding
from hivemind_proto.hazmat import make_envelope

from .._case import Failed, Level, Outcome, Profile, Skipped, expect
from .._clientctx import ClientContext, iv_of
from .._peer import PeerClosed
from ._registry import client_case

L, S = Profile.L, Profile.S
MUST, SHOULD, INFO = Level.MUST, Level.SHOULD, Level.INFO
_ENCODINGS = {e.value for e in TextEncoding}
_CIPHERS = {c.value for c in Cipher}


@client_case(
    "client/3.4/C02",
    "3.4",
    "handshake material",
    "Answering an offer with password true, a client MUST send a cleartext HANDSHAKE with an "
    "envelope valid for its password, the lists encodings and ciphers of registered names, and "
    "a boolean binarize.",
    MUST,
    L,
)
async def material(ctx: ClientContext) -> Outcome:
    conn = await ctx.accept()
    await ctx.opening(conn)
    payload = await ctx.read_material(conn)
    iv_of(payload.get("envelope"))
    from hivemind_proto.hazmat import verify_envelope

    try:
        verify_envelope(ctx.config.client.password, payload.get("envelope"))
    except Exception:
        raise Failed("an envelope valid for the password", repr(payload.get("envelope"))) from None
    encodings, ciphers = payload.get("encodings"), payload.get("ciphers")
    expect(
        isinstance(encodings, list) and set(encodings) <= _ENCODINGS,
        "registered encodings",
        repr(encodings),
    )
    expect(
        isinstance(ciphers, list) and set(ciphers) <= _CIPHERS, "registered ciphers", repr(ciphers)
    )
    expect(
        isinstance(payload.get("binarize"), bool),
        "a boolean binarize",
        repr(payload.get("binarize")),
    )
    return Outcome(f"encodings {encodings}, ciphers {ciphers}")


@client_case(
    "client/3.4/C03",
    "3.4",
    "the hub's choice is followed",
    "A client MUST use the encoding and cipher the hub's response selects for every later frame.",
    MUST,
    L,
)
async def follows_choice(ctx: ClientContext) -> Outcome:
    conn = await ctx.accept()
    await ctx.opening(conn)
    payload = await ctx.read_material(conn)
    encodings = [e for e in payload.get("encodings") or [] if e != "JSON-Z85P"]
    ciphers = list(payload.get("ciphers") or [])
    if len(encodings) < 2 or len(ciphers) < 2:
        raise Skipped("the client offers a single encoding or cipher")
    keys = await ctx.respond(conn, payload, cipher=ciphers[-1], encoding=encodings[-1])
    from .._clientctx import ClientSession

    session = ClientSession(conn, keys, payload, await ctx.read_hello(conn, keys))
    await ctx.echo(session)
    return Outcome(f"{encodings[-1]} / {ciphers[-1]}")


@client_case(
    "client/3.4/C04",
    "3.4",
    "defaults when the hub names nothing",
    "When the hub's response omits encoding and cipher a client MUST use JSON-HEX and AES-GCM.",
    MUST,
    L,
)
async def defaults(ctx: ClientContext) -> Outcome:
    session = await ctx.session(cipher=None, encoding=None)
    await ctx.echo(session)
    return Outcome("JSON-HEX / AES-GCM")


@client_case(
    "client/3.8/C05",
    "3.8",
    "client HELLO",
    "After keying, a client MUST send a HELLO carrying 'session' (an object whose session_id "
    "is not 'default'), 'site_id' (a string) and 'pubkey' (a PEM string or null).",
    MUST,
    L,
)
async def client_hello(ctx: ClientContext) -> Outcome:
    session = await ctx.session()
    hello = session.hello
    sess = hello.get("session")
    expect(isinstance(sess, dict), "an object session", repr(sess)[:60])
    assert isinstance(sess, dict)
    sid = sess.get("session_id")
    expect(
        isinstance(sid, str) and sid not in ("", "default"),
        "a session_id other than 'default'",
        repr(sid),
    )
    expect(isinstance(hello.get("site_id"), str), "a string site_id", repr(hello.get("site_id")))
    pubkey = hello.get("pubkey")
    ok = pubkey is None or (isinstance(pubkey, str) and "BEGIN PUBLIC KEY" in pubkey)
    expect(ok, "a PEM pubkey or null", repr(pubkey)[:60])
    return Outcome(f"session {sid!r}, site {hello.get('site_id')!r}")


@client_case(
    "client/3.8/C06",
    "3.8",
    "session in the client's own BUS messages",
    "Every BUS message a client originates MUST carry context.session with its HELLO "
    "session_id and a site_id (observed only if the client sends any of its own).",
    INFO,
    L,
)
async def own_bus(ctx: ClientContext) -> Outcome:
    session = await ctx.session()
    try:
        message = await session.recv(ctx.config.quiet_timeout)
    except (trio.TooSlowError, PeerClosed):
        raise Skipped("the client sent no BUS message of its own") from None
    sess = (
        (message.payload.get("context") or {}).get("session")
        if isinstance(message.payload, dict)
        else None
    )
    sid = session.hello.get("session", {}).get("session_id")
    ok = isinstance(sess, dict) and sess.get("session_id") == sid
    return Outcome("session matches" if ok else "session missing or different", info=True)


async def _expect_refusal(ctx: ClientContext, conn: object, what: str) -> Outcome:
    from .._peer import Accepted

    assert isinstance(conn, Accepted)
    try:
        code, frames = await conn.peer.wait_closed(conn.peer.close_timeout)
    except trio.TooSlowError:
        raise Failed(f"the client to disconnect after {what}", "still connected") from None
    expect(not frames, f"nothing sent after {what}", f"{len(frames)} frames")
    return Outcome(f"disconnected (code {code})")


@client_case(
    "client/3.5/C07",
    "3.5",
    "hub envelope for another password",
    "A client MUST verify the hub's envelope: one made with another password ends the "
    "connection with no HELLO or BUS sent.",
    MUST,
    S,
)
async def wrong_hub_envelope(ctx: ClientContext) -> Outcome:
    conn = await ctx.accept()
    await ctx.opening(conn)
    payload = await ctx.read_material(conn)
    forged = make_envelope("not-" + ctx.config.client.password, ctx.rng(8))
    await ctx.respond(conn, payload, envelope=forged)
    return await _expect_refusal(ctx, conn, "a forged envelope")


@client_case(
    "client/3.5/C08",
    "3.5",
    "reflected envelope",
    "A client MUST refuse its own envelope reflected back as the hub's (it would zero the salt).",
    MUST,
    S,
)
async def reflected(ctx: ClientContext) -> Outcome:
    conn = await ctx.accept()
    await ctx.opening(conn)
    payload = await ctx.read_material(conn)
    await ctx.respond(conn, payload, envelope=str(payload.get("envelope")))
    return await _expect_refusal(ctx, conn, "a reflected envelope")


@client_case(
    "client/3.3/C16",
    "3.3",
    "unknown offer keys",
    "A client MUST ignore unknown keys in the hub's HANDSHAKE offer.",
    MUST,
    L,
)
async def unknown_offer_keys(ctx: ClientContext) -> Outcome:
    offer = ctx.offer(x_conformance_extension={"future": True}, min_protocol_version=0)
    session = await ctx.session(offer=offer)
    await ctx.echo(session)
    return Outcome("ignored")


@client_case(
    "client/3.6/C20",
    "3.6",
    "RSA handshake signature",
    "A client taking the RSA handshake MUST verify the hub's PSS signature before using the key.",
    INFO,
    S,
)
async def rsa_signature(ctx: ClientContext) -> Outcome:
    raise Skipped("the echo contract's test identity has a password: the RSA handshake is not used")


@client_case(
    "client/3.3/C21",
    "3.3",
    "offer without the password branch",
    "A client with a password facing an offer with password false SHOULD report a "
    "configuration error and MUST NOT re-send handshake material in a loop.",
    SHOULD,
    S,
)
async def no_password_branch(ctx: ClientContext) -> Outcome:
    conn = await ctx.accept()
    await ctx.opening(conn, ctx.offer(password=False))
    shakes = 0
    window = conn.peer.close_timeout + 1
    with trio.move_on_after(window):
        try:
            while True:
                frame = await conn.peer.recv(window)
                shakes += isinstance(frame, str) and '"shake"' in frame
        except (PeerClosed, trio.TooSlowError):
            pass
    expect(shakes <= 1, f"at most one HANDSHAKE in {window:g} s", f"{shakes}")
    return Outcome("closed" if conn.peer.closed else f"{shakes} HANDSHAKE, then silence")


@client_case(
    "client/3.1/CX01",
    "3.1",
    "garbage instead of the hub HELLO",
    "A client MUST close the connection, without sending handshake material, when the hub's "
    "first frame is not a JSON object.",
    MUST,
    S,
)
async def garbage_first(ctx: ClientContext) -> Outcome:
    conn = await ctx.accept()
    await conn.peer.send("this is not a hub HELLO {")
    return await _expect_refusal(ctx, conn, "a garbage first frame")
