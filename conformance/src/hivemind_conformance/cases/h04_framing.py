"""Hub cases of docs/spec §2 (envelope), §4 (record layer) and §5 (WIRE-1)."""

from __future__ import annotations

import json
from typing import Any

import trio
from hivemind_proto import TextEncoding
from hivemind_proto.hazmat import decode_text, decode_wire1, encode_text, loads, nonce_size

from .._case import Failed, Level, Outcome, Profile, Skipped, expect
from .._hubctx import ECHO, HubContext, Session, reply_data
from .._peer import PeerClosed
from ._common import expect_close, no_reply
from ._registry import hub_case

L, S = Profile.L, Profile.S
MUST, SHOULD, INFO = Level.MUST, Level.SHOULD, Level.INFO
_SEALED_KEYS = {"ciphertext", "tag", "nonce"}


async def _raw_replies(ctx: HubContext, session: Session, count: int) -> list[str | bytes]:
    """Send ``count`` echo requests and return the raw frames of their replies."""
    frames: list[str | bytes] = []
    began = trio.current_time()
    for start in range(0, count, 50):
        await trio.sleep_until(began + start / ctx.config.bulk_rate)
        batch = min(50, count - start)
        for i in range(batch):
            await session.send(ctx.echo_message(session, {"n": start + i}))
        for _ in range(batch):
            try:
                frames.append(await session.peer.recv(ctx.config.reply_timeout))
            except (PeerClosed, trio.TooSlowError) as exc:
                raise Failed(f"{count} echo replies", f"{len(frames)} then {exc!r}") from None
    return frames


def _nonce_and_tag(frame: str | bytes, session: Session) -> tuple[bytes, bytes | None]:
    if isinstance(frame, bytes):
        return frame[: nonce_size(session.keys.cipher)], None
    obj = loads(frame)
    encoding = session.keys.encoding
    return decode_text(obj["nonce"], encoding), decode_text(obj["tag"], encoding)


@hub_case(
    "hub/4.1/H18",
    "4.1",
    "hub frames after keying are sealed",
    "After keying, every hub frame other than HELLO and HANDSHAKE MUST be either a text frame "
    "holding exactly ciphertext, tag and nonce in the negotiated encoding, or a binary frame, "
    "and MUST open with the session key.",
    MUST,
    L,
)
async def sealed_frames(ctx: HubContext) -> Outcome:
    session = await ctx.session(encodings=["JSON-B64", "JSON-HEX"])
    for frame in await _raw_replies(ctx, session, 5):
        if isinstance(frame, str):
            obj = loads(frame)
            keys = set(obj) if isinstance(obj, dict) else set()
            expect(keys == _SEALED_KEYS, "exactly ciphertext, tag, nonce", repr(sorted(keys)))
        try:
            session.keys.open(frame)
        except Exception:
            raise Failed("frames that open with the session key", "one that does not") from None
    return Outcome(f"5 frames opened ({session.keys.encoding.value})")


@hub_case(
    "hub/4.2/H19",
    "4.2",
    "nonce uniqueness and sizes",
    "A hub MUST never repeat a nonce under one key; nonces are 16 bytes for AES-GCM and 12 "
    "for ChaCha20-Poly1305, tags 16 bytes.",
    MUST,
    L,
)
async def nonces(ctx: HubContext) -> Outcome:
    session = await ctx.session()
    count = ctx.config.nonce_samples
    seen: set[bytes] = set()
    size = nonce_size(session.keys.cipher)
    for frame in await _raw_replies(ctx, session, count):
        nonce, tag = _nonce_and_tag(frame, session)
        expect(len(nonce) == size, f"{size}-byte nonces", f"{len(nonce)} bytes")
        expect(tag is None or len(tag) == 16, "16-byte tags", f"{len(tag or b'')} bytes")
        expect(nonce not in seen, "no repeated nonce", f"nonce {nonce.hex()} repeated")
        seen.add(nonce)
    return Outcome(f"{len(seen)} distinct {size}-byte nonces ({session.keys.cipher.value})")


@hub_case(
    "hub/4.1/H24",
    "4.1",
    "cleartext BUS after keying",
    "After keying, a hardened hub MUST refuse a cleartext message other than HELLO and "
    "HANDSHAKE: it closes the connection and never delivers the message.",
    MUST,
    S,
)
async def cleartext_after_keying(ctx: HubContext) -> Outcome:
    session = await ctx.session()
    await ctx.echo(session)
    await session.peer.send_plain(ctx.echo_message(session, {"clear": True}))
    try:
        reply = await ctx.wait_reply(session, timeout=ctx.config.quiet_timeout)
    except PeerClosed:
        return Outcome("closed")
    expect(reply is None, "the cleartext message not delivered", "it was echoed")
    await expect_close(session.peer, forbid_envelope=False)
    return Outcome("closed")


def _flip_ciphertext(frame: str, encoding: TextEncoding) -> str:
    obj = json.loads(frame)
    raw = bytearray(decode_text(obj["ciphertext"], encoding))
    raw[len(raw) // 2] ^= 0x01
    obj["ciphertext"] = encode_text(bytes(raw), encoding)
    return json.dumps(obj)


@hub_case(
    "hub/4.1/H25",
    "4.1",
    "flipped ciphertext bit",
    "A hub MUST NOT deliver a frame that fails authentication and MUST close the connection.",
    MUST,
    S,
)
async def flipped_bit(ctx: HubContext) -> Outcome:
    session = await ctx.session()
    await ctx.echo(session)
    sealed = session.keys.seal(ctx.echo_message(session, {"tampered": True}))
    assert isinstance(sealed, str)
    await session.peer.send(_flip_ciphertext(sealed, session.keys.encoding))
    try:
        reply = await ctx.wait_reply(session, timeout=ctx.config.quiet_timeout)
    except PeerClosed:
        return Outcome("closed")
    expect(reply is None, "the tampered frame not delivered", "it was echoed")
    await expect_close(session.peer, forbid_envelope=False)
    return Outcome("closed")


def _compression_bit(plain: bytes) -> int:
    bits = "".join(f"{b:08b}" for b in plain[:4])
    start = bits.index("1")
    offset = start + 2 + (8 if bits[start + 1] == "1" else 0) + 5
    return int(bits[offset])


async def _binarized(ctx: HubContext) -> tuple[Session, list[bytes]]:
    session = await ctx.session(binarize=True)
    if session.offer.get("binarize") is not True:
        raise Skipped("the hub does not offer binarize")
    frames = await _raw_replies(ctx, session, 3)
    binary = [f for f in frames if isinstance(f, bytes)]
    expect(len(binary) == len(frames), "binary frames once binarize is agreed", "text frames")
    return session, [session.keys.open_raw(f) for f in binary]


@hub_case(
    "hub/5.1/H37",
    "5.1",
    "binarized hub frames",
    "Once binarize is agreed, a hub MUST send every message other than HELLO and HANDSHAKE as "
    "a binary frame whose plaintext is a valid WIRE-1 bitstring.",
    MUST,
    L,
)
async def binarized(ctx: HubContext) -> Outcome:
    _, plains = await _binarized(ctx)
    for plain in plains:
        try:
            decode_wire1(plain)
        except Exception as exc:
            raise Failed("valid WIRE-1 bitstrings", f"{type(exc).__name__}") from None
    return Outcome(f"{len(plains)} binary frames decoded")


@hub_case(
    "hub/5.1/H37-S",
    "5.1",
    "compression bit for legacy clients",
    "A hub SHOULD set the WIRE-1 compression bit on every frame it sends, since released "
    "decoders inflate every frame.",
    SHOULD,
    S,
)
async def compression_bit(ctx: HubContext) -> Outcome:
    _, plains = await _binarized(ctx)
    bits = [_compression_bit(p) for p in plains]
    expect(all(bits), "C=1 on every frame", f"bits {bits}")
    return Outcome("C=1 throughout")


async def _binary_echo(ctx: HubContext, compress: bool) -> Outcome:
    session = await ctx.session()
    await session.send(ctx.echo_message(session, {"wire1": compress}), binary=True)
    reply = await ctx.wait_reply(session)
    expect(reply is not None, "an echo reply to the WIRE-1 request", "none")
    assert reply is not None
    expect(reply_data(reply).get("data") == {"wire1": compress}, "the data", repr(reply.payload))
    return Outcome("decoded")


@hub_case(
    "hub/5.1/H38",
    "5.1",
    "compressed WIRE-1 from the client",
    "A hub MUST decode an encrypted binary frame carrying a compressed WIRE-1 message.",
    MUST,
    L,
)
async def wire1_compressed(ctx: HubContext) -> Outcome:
    return await _binary_echo(ctx, True)


@hub_case(
    "hub/5.1/H38-S",
    "5.1",
    "uncompressed WIRE-1 from the client",
    "A hub MUST honour the compression bit: an uncompressed WIRE-1 message decodes too.",
    MUST,
    S,
)
async def wire1_plain(ctx: HubContext) -> Outcome:
    return await _binary_echo(ctx, False)


def _wire1_with_code(code: int, payload: dict[str, Any]) -> bytes:
    header = bytes([0x80 | (code << 1), 2]) + b"{}"
    return header + json.dumps(payload).encode()


@hub_case(
    "hub/5.1/H39",
    "5.1",
    "reserved WIRE-1 type codes",
    "A hardened hub MUST NOT dispatch a WIRE-1 frame whose type code is reserved (13 to 31).",
    MUST,
    S,
)
async def reserved_codes(ctx: HubContext) -> Outcome:
    notes = []
    for code in (13, 31):
        session = await ctx.session()
        body = ctx.echo_message(session, {"code": code}).payload
        await session.peer.send(session.keys.seal_bytes(_wire1_with_code(code, dict(body))))
        closed = await no_reply(ctx, session, ECHO, f"type code {code}")
        notes.append(f"{code}: {'closed' if closed else 'ignored'}")
    return Outcome(", ".join(notes))


async def _lenient(ctx: HubContext, edit: str) -> Outcome:
    session = await ctx.session()
    obj = ctx.echo_message(session, {"lenient": edit}).to_dict()
    if edit == "no metadata":
        del obj["metadata"]
    else:
        obj["x_conformance_extension"] = {"ignored": True}
    await session.peer.send(session.keys.seal_text(json.dumps(obj).encode()))
    try:
        reply = await ctx.wait_reply(session)
    except PeerClosed:
        reply = None
    expect(reply is not None, f"the message with {edit} delivered", "no reply")
    return Outcome("accepted")


@hub_case(
    "hub/2.1/H43",
    "2.1",
    "envelope without metadata",
    "A hub MUST accept a JSON envelope that lacks the optional keys (metadata, route, ...).",
    MUST,
    L,
)
async def no_metadata(ctx: HubContext) -> Outcome:
    return await _lenient(ctx, "no metadata")


@hub_case(
    "hub/2.1/H43-S",
    "2.1",
    "envelope with an unknown key",
    "A hub SHOULD ignore unknown top-level envelope keys.",
    SHOULD,
    S,
)
async def unknown_key(ctx: HubContext) -> Outcome:
    return await _lenient(ctx, "an unknown key")


@hub_case(
    "hub/4.1/X02",
    "4.1",
    "garbage before the handshake",
    "A hub MUST close a connection that sends a text frame which is not a JSON object.",
    MUST,
    S,
)
async def garbage(ctx: HubContext) -> Outcome:
    peer = await ctx.dial()
    await ctx.opening(peer)
    await peer.send("this is not json {")
    return Outcome(f"closed with {await expect_close(peer)}")


@hub_case(
    "hub/4.1/X03",
    "4.1",
    "sealed frame before keys",
    "A hub MUST close a connection that sends an encrypted or binary frame before any key was "
    "agreed.",
    MUST,
    S,
)
async def sealed_before_keys(ctx: HubContext) -> Outcome:
    for frame in (b"\x01" * 64, json.dumps({"ciphertext": "00", "tag": "00", "nonce": "00"})):
        peer = await ctx.dial()
        await ctx.opening(peer)
        await peer.send(frame)
        await expect_close(peer)
    return Outcome("both closed")


@hub_case(
    "hub/4.2/X04",
    "4.2",
    "replayed legacy frame",
    "The legacy record layer has no replay protection; a hub MAY detect replays (observation "
    "only; profile N makes replays fatal).",
    INFO,
    L,
)
async def legacy_replay(ctx: HubContext) -> Outcome:
    session = await ctx.session()
    frame = session.keys.seal(ctx.echo_message(session, {"replay": 1}))
    await session.peer.send(frame)
    first = await ctx.wait_reply(session)
    await session.peer.send(frame)
    try:
        second = await ctx.wait_reply(session, timeout=ctx.config.quiet_timeout)
    except PeerClosed:
        return Outcome("the replay closed the connection", info=True)
    state = "delivered twice" if first and second else "not delivered again"
    return Outcome(f"replayed frame {state}", info=True)
