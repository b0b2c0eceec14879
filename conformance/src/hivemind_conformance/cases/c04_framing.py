"""Client cases of docs/spec §2 (envelope), §4 (record layer) and §5 (WIRE-1)."""

from __future__ import annotations

import json

import trio
from hivemind_proto.hazmat import decode_text, encode_text, loads, nonce_size

from .._case import Failed, Level, Outcome, Profile, expect
from .._clientctx import ClientContext, ClientSession
from .._peer import PeerClosed
from ._registry import client_case

L, S = Profile.L, Profile.S
MUST = Level.MUST


@client_case(
    "client/5.1/C09",
    "5.1",
    "encrypted JSON and compressed WIRE-1 from the hub",
    "A client MUST decode encrypted JSON text frames and encrypted binary frames carrying "
    "compressed WIRE-1 messages.",
    MUST,
    L,
)
async def decodes(ctx: ClientContext) -> Outcome:
    session = await ctx.session()
    await ctx.echo(session, {"form": "json"})
    await ctx.echo(session, {"form": "wire1-compressed"}, binary=True, compress=True)
    return Outcome("both decoded")


@client_case(
    "client/5.1/C09-S",
    "5.1",
    "uncompressed WIRE-1 from the hub",
    "A client MUST honour the WIRE-1 compression bit: an uncompressed frame decodes too.",
    MUST,
    S,
)
async def decodes_plain(ctx: ClientContext) -> Outcome:
    session = await ctx.session()
    await ctx.echo(session, {"form": "wire1-plain"}, binary=True, compress=False)
    return Outcome("decoded")


def _bad_tag(frame: str, session: ClientSession) -> str:
    obj = json.loads(frame)
    tag = bytearray(decode_text(obj["tag"], session.keys.encoding))
    tag[0] ^= 0x80
    obj["tag"] = encode_text(bytes(tag), session.keys.encoding)
    return json.dumps(obj)


@client_case(
    "client/4.1/C10",
    "4.1",
    "frame with a bad tag",
    "A client MUST NOT act on a frame that fails authentication; it either drops the frame "
    "and stays usable, or closes the connection.",
    MUST,
    S,
)
async def bad_tag(ctx: ClientContext) -> Outcome:
    session = await ctx.session(cipher="CHACHA20-POLY1305")
    data = {"tampered": ctx.rng(4).hex()}
    sealed = session.keys.seal(ctx.echo_message(data))
    assert isinstance(sealed, str)
    await session.peer.send(_bad_tag(sealed, session))
    try:
        echoed = await ctx.wait_echo(session, data, ctx.config.quiet_timeout)
    except PeerClosed:
        return Outcome("closed the connection")
    expect(echoed is None, "the tampered BUS not echoed", "it was echoed")
    await ctx.echo(session)
    return Outcome("dropped; still usable")


@client_case(
    "client/4.1/C11",
    "4.1",
    "no binary frames without binarize",
    "When the hub offered binarize false, a client MUST NOT send binary frames (BINARY "
    "messages excepted).",
    MUST,
    L,
)
async def no_binary(ctx: ClientContext) -> Outcome:
    session = await ctx.session()
    for i in range(3):
        await session.send(ctx.echo_message({"i": i}))
    binary = 0
    with trio.move_on_after(ctx.config.reply_timeout):
        for _ in range(3):
            frame = await session.peer.recv(ctx.config.reply_timeout)
            binary += isinstance(frame, bytes)
    expect(binary == 0, "text frames only", f"{binary} binary frames")
    return Outcome("text frames only")


@client_case(
    "client/4.2/C12",
    "4.2",
    "client nonces",
    "A client MUST never repeat a nonce under one key; nonces are 16 bytes for AES-GCM and 12 "
    "for ChaCha20-Poly1305, tags 16 bytes.",
    MUST,
    L,
)
async def nonces(ctx: ClientContext) -> Outcome:
    session = await ctx.session()
    count = ctx.config.nonce_samples
    seen: set[bytes] = set()
    size = nonce_size(session.keys.cipher)
    began = trio.current_time()
    for start in range(0, count, 50):
        await trio.sleep_until(began + start / ctx.config.bulk_rate)
        batch = min(50, count - start)
        for i in range(batch):
            await session.send(ctx.echo_message({"n": start + i}))
        for _ in range(batch):
            try:
                frame = await session.peer.recv(ctx.config.reply_timeout)
            except (PeerClosed, trio.TooSlowError) as exc:
                raise Failed(f"{count} echoes", f"{len(seen)} then {exc!r}") from None
            if isinstance(frame, bytes):
                nonce, tag = frame[:size], b"x" * 16
            else:
                obj = loads(frame)
                nonce = decode_text(obj["nonce"], session.keys.encoding)
                tag = decode_text(obj["tag"], session.keys.encoding)
            expect(len(nonce) == size, f"{size}-byte nonces", f"{len(nonce)}")
            expect(len(tag) == 16, "16-byte tags", f"{len(tag)}")
            expect(nonce not in seen, "no repeated nonce", f"{nonce.hex()} repeated")
            seen.add(nonce)
    return Outcome(f"{len(seen)} distinct nonces ({session.keys.cipher.value})")


@client_case(
    "client/2.1/C16-S",
    "2.1",
    "unknown envelope keys",
    "A client MUST ignore unknown top-level keys of a HiveMessage.",
    MUST,
    S,
)
async def unknown_envelope_keys(ctx: ClientContext) -> Outcome:
    session = await ctx.session()
    data = {"extension": True}
    obj = ctx.echo_message(data).to_dict()
    obj["x_conformance_extension"] = 1
    await session.peer.send(session.keys.seal_text(json.dumps(obj).encode()))
    try:
        echoed = await ctx.wait_echo(session, data)
    except PeerClosed:
        echoed = None
    expect(echoed is not None, "the BUS echoed", "nothing")
    return Outcome("ignored")


@client_case(
    "client/4.1/CX02",
    "4.1",
    "cleartext BUS after keying",
    "After keying, a client MUST NOT act on a cleartext message other than HELLO and HANDSHAKE.",
    MUST,
    S,
)
async def cleartext_after_keying(ctx: ClientContext) -> Outcome:
    session = await ctx.session()
    data = {"clear": ctx.rng(4).hex()}
    await session.peer.send_plain(ctx.echo_message(data))
    try:
        echoed = await ctx.wait_echo(session, data, ctx.config.quiet_timeout)
    except PeerClosed:
        return Outcome("closed the connection")
    expect(echoed is None, "the cleartext BUS ignored", "it was echoed")
    return Outcome("ignored")
