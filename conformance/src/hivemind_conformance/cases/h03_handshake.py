"""Hub cases of docs/spec §3 (opening, password handshake, client HELLO)."""

from __future__ import annotations

import re
from typing import Any

import trio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hivemind_proto import Cipher, HiveMessage, MessageType, TextEncoding
from hivemind_proto.hazmat import make_envelope

from .._case import Failed, Level, Outcome, Profile, Skipped, expect
from .._hubctx import HubContext, reply_data
from .._peer import PeerClosed
from ._common import expect_close
from ._registry import hub_case

L, S = Profile.L, Profile.S
MUST, SHOULD, INFO = Level.MUST, Level.SHOULD, Level.INFO
_REGISTRY_ENCODINGS = {e.value for e in TextEncoding}
_REGISTRY_CIPHERS = {c.value for c in Cipher}
_HEX = re.compile(r"^[0-9a-fA-F]+$")


@hub_case(
    "hub/3.1/H03",
    "3.1",
    "the hub opens with HELLO then HANDSHAKE",
    "After accepting a client, a hub MUST send a cleartext HELLO text frame and then a "
    "cleartext HANDSHAKE offer text frame, before anything else.",
    MUST,
    L,
)
async def opening_frames(ctx: HubContext) -> Outcome:
    peer = await ctx.dial()
    hello, offer = await ctx.opening(peer)
    return Outcome(f"HELLO keys {sorted(hello)}, offer keys {sorted(offer)}")


@hub_case(
    "hub/3.2/H04",
    "3.2",
    "HELLO payload",
    "The hub HELLO payload MUST carry 'peer' (a string naming the connection) and 'node_id' "
    "(a string); 'pubkey' MUST be an RSA public key in PEM form or null.",
    MUST,
    L,
)
async def hello_payload(ctx: HubContext) -> Outcome:
    peer = await ctx.dial()
    hello, _ = await ctx.opening(peer)
    expect(isinstance(hello.get("peer"), str), "a string 'peer'", repr(hello.get("peer")))
    expect(isinstance(hello.get("node_id"), str), "a string 'node_id'", repr(hello.get("node_id")))
    expect("pubkey" in hello, "a 'pubkey' key (PEM or null)", "no 'pubkey'")
    pubkey = hello["pubkey"]
    if pubkey is not None:
        try:
            key = serialization.load_pem_public_key(str(pubkey).encode())
        except Exception:
            raise Failed("'pubkey' to parse as a PEM public key", repr(pubkey)[:60]) from None
        expect(isinstance(key, rsa.RSAPublicKey), "an RSA key", type(key).__name__)
    note = "" if ctx.config.useragent in hello["peer"] else " (peer does not name the useragent)"
    return Outcome(f"peer {hello['peer']!r}{note}")


_OFFER_FIELDS: dict[str, Any] = {
    "handshake": bool,
    "binarize": bool,
    "preshared_key": bool,
    "password": bool,
    "crypto_required": bool,
    "min_protocol_version": int,
    "max_protocol_version": int,
    "encodings": list,
    "ciphers": list,
}


@hub_case(
    "hub/3.3/H05",
    "3.3",
    "HANDSHAKE offer fields",
    "The hub HANDSHAKE offer MUST carry the booleans handshake, binarize, preshared_key, "
    "password and crypto_required, the integers min_protocol_version and max_protocol_version, "
    "and the lists encodings and ciphers of registered names, and MUST NOT carry an envelope.",
    MUST,
    L,
)
async def offer_fields(ctx: HubContext) -> Outcome:
    peer = await ctx.dial()
    _, offer = await ctx.opening(peer)
    for name, kind in _OFFER_FIELDS.items():
        value = offer.get(name)
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        expect(ok, f"{name} of type {kind.__name__}", repr(value))
    unknown = set(offer["encodings"]) - _REGISTRY_ENCODINGS
    expect(not unknown, "registered encoding names", f"unknown {sorted(unknown)}")
    unknown = set(offer["ciphers"]) - _REGISTRY_CIPHERS
    expect(not unknown, "registered cipher names", f"unknown {sorted(unknown)}")
    expect("envelope" not in offer, "no envelope in the offer", "an envelope")
    return Outcome(f"encodings {offer['encodings']}, ciphers {offer['ciphers']}")


@hub_case(
    "hub/3.3/H06",
    "3.3",
    "offer flags match the client record",
    "The offer's 'password' flag MUST be true for a client that has a password.",
    MUST,
    L,
)
async def offer_flags(ctx: HubContext) -> Outcome:
    peer = await ctx.dial()
    _, offer = await ctx.opening(peer)
    expect(offer.get("password") is True, "password: true", repr(offer.get("password")))
    return Outcome(f"preshared_key {offer.get('preshared_key')!r}")


@hub_case(
    "hub/3.4/H07",
    "3.4",
    "password handshake response",
    "To valid password-branch material a hub MUST answer with a cleartext HANDSHAKE whose "
    "envelope (48 to 80 hex digits) verifies against the password with an IV different from "
    "the client's, and whose encoding and cipher are the client's choices.",
    MUST,
    L,
)
async def handshake_response(ctx: HubContext) -> Outcome:
    peer = await ctx.dial()
    await ctx.opening(peer)
    response, _, iv = await ctx.handshake(peer, encodings=["JSON-HEX"], ciphers=["AES-GCM"])
    envelope = response.get("envelope")
    expect(
        isinstance(envelope, str) and 48 <= len(envelope) <= 80 and bool(_HEX.match(envelope)),
        "48 to 80 hex digits",
        repr(envelope),
    )
    assert isinstance(envelope, str)
    expect(envelope[:16].lower() != iv.hex(), "a hub IV different from ours", "our own IV")
    expect(
        response.get("encoding") == "JSON-HEX", "encoding JSON-HEX", repr(response.get("encoding"))
    )
    expect(response.get("cipher") == "AES-GCM", "cipher AES-GCM", repr(response.get("cipher")))
    return Outcome("envelope verified")


@hub_case(
    "hub/3.1/H08",
    "3.1",
    "a complete session reaches the agent",
    "After the handshake and an encrypted client HELLO, a hub MUST keep the connection open "
    "and deliver an allowed BUS message to its agent (observed through the echo contract).",
    MUST,
    L,
)
async def full_session(ctx: HubContext) -> Outcome:
    session = await ctx.session()
    reply = await ctx.echo(session, {"hello": "world"})
    expect(
        reply_data(reply).get("data") == {"hello": "world"}, "the echoed data", repr(reply.payload)
    )
    return Outcome(f"{session.keys.cipher.value} / {session.keys.encoding.value}")


@hub_case(
    "hub/3.4/H09",
    "3.4",
    "the client's order wins",
    "A hub MUST select the first encoding and the first cipher of the client's lists that it "
    "allows.",
    MUST,
    L,
)
async def client_order(ctx: HubContext) -> Outcome:
    peer = await ctx.dial()
    _, offer = await ctx.opening(peer)
    wanted = {"JSON-B32", "JSON-HEX"} <= set(offer.get("encodings", []))
    wanted = wanted and {"CHACHA20-POLY1305", "AES-GCM"} <= set(offer.get("ciphers", []))
    if not wanted:
        raise Skipped("the hub does not allow JSON-B32, JSON-HEX, CHACHA20-POLY1305 and AES-GCM")
    response, _, _ = await ctx.handshake(
        peer, encodings=["JSON-B32", "JSON-HEX"], ciphers=["CHACHA20-POLY1305", "AES-GCM"]
    )
    expect(response.get("encoding") == "JSON-B32", "JSON-B32", repr(response.get("encoding")))
    expect(
        response.get("cipher") == "CHACHA20-POLY1305",
        "CHACHA20-POLY1305",
        repr(response.get("cipher")),
    )
    return Outcome("JSON-B32 / CHACHA20-POLY1305")


@hub_case(
    "hub/3.4/H10",
    "3.4",
    "defaults when the client lists nothing",
    "When the client's material has no encodings or ciphers list, a hub MUST select JSON-HEX "
    "and AES-GCM.",
    MUST,
    L,
)
async def defaults(ctx: HubContext) -> Outcome:
    peer = await ctx.dial()
    await ctx.opening(peer)
    response, _, _ = await ctx.handshake(peer, encodings=None, ciphers=None)
    expect(response.get("encoding") == "JSON-HEX", "JSON-HEX", repr(response.get("encoding")))
    expect(response.get("cipher") == "AES-GCM", "AES-GCM", repr(response.get("cipher")))
    return Outcome("JSON-HEX / AES-GCM")


@hub_case(
    "hub/3.4/H11",
    "3.4",
    "nothing acceptable offered",
    "A hub MUST close, without an envelope, a client that offers only encodings or ciphers "
    "the hub does not allow.",
    MUST,
    L,
)
async def nothing_acceptable(ctx: HubContext) -> Outcome:
    peer = await ctx.dial()
    _, offer = await ctx.opening(peer)
    outside = sorted(_REGISTRY_ENCODINGS - set(offer.get("encodings", [])))
    if not outside:
        raise Skipped("the hub allows every registered encoding")
    payload = ctx.material(ctx.config.client.password, ctx.rng(8), encodings=outside)
    await peer.send_plain(HiveMessage(MessageType.HANDSHAKE, payload))
    code = await expect_close(peer)
    return Outcome(f"offered {outside}; closed with {code}")


@hub_case(
    "hub/3.4/H12",
    "3.4",
    "HANDSHAKE with neither envelope nor pubkey",
    "A hub MUST close a connection whose HANDSHAKE material has neither an envelope nor a pubkey.",
    MUST,
    L,
)
async def empty_material(ctx: HubContext) -> Outcome:
    peer = await ctx.dial()
    await ctx.opening(peer)
    payload = {"binarize": False, "encodings": ["JSON-HEX"], "ciphers": ["AES-GCM"]}
    await peer.send_plain(HiveMessage(MessageType.HANDSHAKE, payload))
    return Outcome(f"closed with {await expect_close(peer)}")


@hub_case(
    "hub/3.5/H13",
    "3.5",
    "wrong password",
    "A hardened hub MUST verify the client's envelope before answering: material made with "
    "a wrong password is closed with code 1008 and gets no envelope.",
    MUST,
    S,
)
async def wrong_password(ctx: HubContext) -> Outcome:
    peer = await ctx.dial()
    await ctx.opening(peer)
    payload = ctx.material("not-" + ctx.config.client.password, ctx.rng(8))
    await peer.send_plain(HiveMessage(MessageType.HANDSHAKE, payload))
    await expect_close(peer, code=1008)
    return Outcome("closed with 1008")


@hub_case(
    "hub/3.5/H14",
    "3.5",
    "malformed envelopes",
    "A hardened hub MUST close, without an envelope, material whose envelope is shorter than "
    "48 or longer than 80 hex digits, or not hex.",
    MUST,
    S,
)
async def malformed_envelopes(ctx: HubContext) -> Outcome:
    good = make_envelope(ctx.config.client.password, ctx.rng(8), 80)
    variants = {"short": good[:46], "long": good + "ab", "not hex": good[:46] + "zz"}
    for envelope in variants.values():
        peer = await ctx.dial()
        await ctx.opening(peer)
        payload = {"binarize": False, "envelope": envelope, "encodings": ["JSON-HEX"]}
        await peer.send_plain(HiveMessage(MessageType.HANDSHAKE, payload))
        await expect_close(peer)
    return Outcome(f"{len(variants)} variants closed")


def _rsa_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode()


@hub_case(
    "hub/3.6/H15",
    "3.6",
    "RSA handshake from a password client",
    "A hardened hub MUST refuse the RSA 'pubkey' handshake from a client that has a password "
    "(close, no envelope): it would yield a session without the password.",
    MUST,
    S,
)
async def rsa_branch(ctx: HubContext) -> Outcome:
    peer = await ctx.dial()
    await ctx.opening(peer)
    pem = await trio.to_thread.run_sync(_rsa_pem)
    payload = {"binarize": False, "pubkey": pem, "encodings": ["JSON-HEX"], "ciphers": ["AES-GCM"]}
    await peer.send_plain(HiveMessage(MessageType.HANDSHAKE, payload))
    return Outcome(f"closed with {await expect_close(peer)}")


@hub_case(
    "hub/3.6/H16",
    "3.6",
    "RSA handshake for a password-less client",
    "A hub that offers the RSA handshake to a password-less client MUST answer with "
    "hex(PSS signature || OAEP ciphertext) of a 32-byte key, JSON-HEX and AES-GCM.",
    INFO,
    L,
)
async def rsa_for_passwordless(ctx: HubContext) -> Outcome:
    raise Skipped(
        "needs a client provisioned without a password; hardened hubs never run the RSA handshake"
    )


@hub_case(
    "hub/3.4/H20",
    "3.4",
    "re-handshake mid-session",
    "A hub MUST answer a new password-branch HANDSHAKE mid-session with a new cleartext "
    "envelope and use the new key for every later frame.",
    MUST,
    L,
)
async def rehandshake(ctx: HubContext) -> Outcome:
    session = await ctx.session()
    await ctx.echo(session)
    response, keys, _ = await ctx.handshake(session.peer, rekeying=session)
    old = session.keys
    session.keys = keys
    expect(keys.key != old.key, "a new key", "the same key")
    reply = await ctx.echo(session, {"after": "rekey"})
    expect(reply_data(reply).get("data") == {"after": "rekey"}, "the echo", repr(reply.payload))
    return Outcome(f"re-keyed ({response.get('cipher')})")


@hub_case(
    "hub/3.8/H21",
    "3.8",
    "client HELLO encrypted or in clear",
    "A hub MUST accept the client HELLO after the handshake both encrypted and in clear, and "
    "then deliver agent replies to the session it names.",
    MUST,
    L,
)
async def hello_forms(ctx: HubContext) -> Outcome:
    for encrypted in (True, False):
        session = await ctx.session(encrypted_hello=encrypted)
        reply = await ctx.echo(session)
        seen = reply_data(reply).get("context", {}).get("session", {})
        expect(
            seen.get("session_id") == session.session_id,
            f"session {session.session_id}",
            repr(seen.get("session_id")),
        )
    return Outcome("both forms accepted")


@hub_case(
    "hub/3.8/H22",
    "3.8",
    "no client HELLO",
    "Until the client HELLO arrives a connection is not registered; a hub MAY register it "
    "earlier (observation only).",
    INFO,
    L,
)
async def no_hello(ctx: HubContext) -> Outcome:
    peer = await ctx.dial()
    await ctx.opening(peer)
    _, keys, _ = await ctx.handshake(peer)
    await peer.send(keys.seal(ctx.echo_message(None, {"no": "hello"})))
    try:
        frame = await peer.recv_or_none(ctx.config.quiet_timeout)
    except PeerClosed as exc:
        return Outcome(f"the hub closed the connection (code {exc.code})", info=True)
    if frame is None:
        return Outcome("no reply: the connection is not registered before its HELLO", info=True)
    return Outcome("a frame arrived: the hub registers before the HELLO", info=True)


@hub_case(
    "hub/3.8/H23",
    "3.8",
    "HELLO with the 'default' session",
    "A hub MUST NOT map a non-admin client's session 'default' onto its own default session: "
    "it closes the connection, denies the client's messages, or renames the session.",
    MUST,
    L,
)
async def default_session(ctx: HubContext) -> Outcome:
    try:
        session = await ctx.session(session_id="default")
        await session.send(ctx.echo_message(session, {"session": "default"}))
        reply = await ctx.wait_reply(session)
    except PeerClosed as exc:
        return Outcome(f"closed (code {exc.code})")
    except Failed as exc:
        if "closed" in exc.actual:
            return Outcome("closed during the handshake")
        raise
    denied = [m for m in session.backlog if m.bus_type == "hive.policy.denied"]
    if reply is None:
        return Outcome("denied" if denied else "not delivered")
    seen = reply_data(reply).get("context", {}).get("session", {}).get("session_id")
    expect(seen != "default", "a renamed or refused session", "the agent saw session 'default'")
    return Outcome(f"renamed to {seen!r}")


@hub_case(
    "hub/3.9/H47",
    "3.9",
    "handshake timeout",
    "A hardened hub MUST close a connection that has not completed the handshake within its "
    "handshake timeout.",
    MUST,
    S,
)
async def handshake_timeout(ctx: HubContext) -> Outcome:
    peer = await ctx.dial()
    await ctx.opening(peer)
    try:
        code, _ = await peer.wait_closed(ctx.config.handshake_timeout + peer.close_timeout)
    except trio.TooSlowError:
        raise Failed(
            f"a close within {ctx.config.handshake_timeout:g} s (+{peer.close_timeout:g} s)",
            "still open",
        ) from None
    return Outcome(f"closed with {code}")
