"""Client mode: the suite plays a scripted hub for a client under test.

Each case gets its own ``ScriptedHubServer`` on 127.0.0.1 and, through the
``launch`` callable, its own run of the client (``--exec`` starts a process
per case with the case's URL). ``ClientContext`` scripts the hub side of the
legacy handshake from ``hivemind_proto.hazmat`` pieces and drives the client
echo contract of docs/spec §9.2: the client completes the handshake with the
test identity, echoes every BUS message back unchanged, and closes when it
receives BUS ``hive.conformance.close``.
"""

from __future__ import annotations

import functools
import random
import shlex
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import trio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hivemind_proto import (
    Cipher,
    HiveMessage,
    MessageType,
    TextEncoding,
    bus_message,
)
from hivemind_proto.hazmat import (
    HUB_CIPHERS,
    HUB_ENCODINGS,
    decode_json,
    derive_session_key,
    envelope_iv,
    make_envelope,
    verify_envelope,
)

from ._case import Case, Failed, Skipped
from ._config import RunConfig
from ._peer import (
    Accepted,
    FramePeer,
    LegacyKeys,
    LogEntry,
    PeerClosed,
    ScriptedHubServer,
    describe_failure,
)

NODE_ID: Final = "hivemind-conformance-harness"
ECHO: Final = "hive.conformance.echo"
CLOSE: Final = "hive.conformance.close"


@dataclass(slots=True)
class ClientSession:
    """A keyed session with the client under test."""

    conn: Accepted
    keys: LegacyKeys
    material: dict[str, Any]
    hello: dict[str, Any]
    backlog: list[HiveMessage] = field(default_factory=list)

    @property
    def peer(self) -> FramePeer:
        """The websocket."""
        return self.conn.peer

    async def send(
        self, message: HiveMessage, *, binary: bool = False, compress: bool = True
    ) -> None:
        """Seal and send ``message``."""
        await self.peer.send(self.keys.seal(message, binary=binary, compress=compress))

    async def recv(self, timeout: float) -> HiveMessage:  # noqa: ASYNC109
        """Receive and open the next client message.

        Raises:
            Failed: the frame does not open with the session key.
        """
        frame = await self.peer.recv(timeout)
        try:
            return self.keys.open(frame)
        except Exception as exc:
            raise Failed(
                "client frames that open with the session key and negotiated encoding",
                f"one that does not ({type(exc).__name__})",
            ) from None


class ClientContext:
    """Helpers for one client case."""

    def __init__(
        self, config: RunConfig, rng: random.Random, log: list[LogEntry], server: ScriptedHubServer
    ) -> None:
        self.config = config
        self.random = rng
        self.log = log
        self.server = server

    def rng(self, n: int) -> bytes:
        """Seeded random bytes."""
        return self.random.randbytes(n)

    # -- the scripted hub --------------------------------------------------

    async def accept(self, timeout: float | None = None) -> Accepted:  # noqa: ASYNC109
        """Wait for the client to connect.

        Raises:
            Failed: it did not connect in time.
        """
        try:
            return await self.server.accept(timeout or self.config.launch_timeout)
        except trio.TooSlowError:
            raise Failed("the client to connect", "no connection") from None

    def hub_hello(self) -> dict[str, Any]:
        """The harness HELLO payload (with an RSA key: released clients expect one)."""
        peer = "conformance-client::1::conformance::default"
        return {"pubkey": harness_pubkey(), "peer": peer, "node_id": NODE_ID}

    def offer(self, **changes: Any) -> dict[str, Any]:
        """A hub HANDSHAKE offer (password branch), with ``changes`` applied."""
        offer: dict[str, Any] = {
            "handshake": True,
            "min_protocol_version": 1,
            "max_protocol_version": 1,
            "binarize": False,
            "preshared_key": False,
            "password": True,
            "crypto_required": True,
            "encodings": [e.value for e in HUB_ENCODINGS],
            "ciphers": [c.value for c in HUB_CIPHERS],
        }
        offer.update(changes)
        return offer

    async def opening(self, conn: Accepted, offer: dict[str, Any] | None = None) -> None:
        """Send HELLO and the offer in clear."""
        await conn.peer.send_plain(HiveMessage(MessageType.HELLO, self.hub_hello()))
        await conn.peer.send_plain(HiveMessage(MessageType.HANDSHAKE, offer or self.offer()))

    async def read_plain(self, conn: Accepted, what: str) -> dict[str, Any]:
        """Read one cleartext JSON object frame from the client.

        Raises:
            Failed: something else, or nothing, arrived.
        """
        try:
            return await conn.peer.recv_plain(self.config.reply_timeout)
        except (PeerClosed, trio.TooSlowError, ValueError) as exc:
            raise Failed(what, describe_failure(exc)) from None

    async def read_material(self, conn: Accepted) -> dict[str, Any]:
        """Read the client's cleartext HANDSHAKE material payload."""
        obj = await self.read_plain(conn, "a cleartext HANDSHAKE from the client")
        payload = obj.get("payload")
        if obj.get("msg_type") != "shake" or not isinstance(payload, dict):
            raise Failed("a cleartext HANDSHAKE", f"msg_type {obj.get('msg_type')!r}")
        return payload

    async def respond(
        self,
        conn: Accepted,
        material: dict[str, Any],
        *,
        cipher: str | None = "",
        encoding: str | None = "",
        envelope: str | None = None,
    ) -> LegacyKeys:
        """Answer the material; ``""`` picks the client's first choice, None omits the field."""
        password = self.config.client.password
        try:
            client_iv = verify_envelope(password, material.get("envelope"))
        except Exception:
            raise Failed(
                "a client envelope valid for the password", repr(material.get("envelope"))
            ) from None
        iv = self.rng(8)
        chosen_cipher = _choice(cipher, material.get("ciphers"), "AES-GCM")
        chosen_encoding = _choice(encoding, material.get("encodings"), "JSON-HEX")
        response: dict[str, Any] = {"envelope": envelope or make_envelope(password, iv)}
        if chosen_encoding[1]:
            response["encoding"] = chosen_encoding[0]
        if chosen_cipher[1]:
            response["cipher"] = chosen_cipher[0]
        await conn.peer.send_plain(HiveMessage(MessageType.HANDSHAKE, response))
        return LegacyKeys(
            derive_session_key(password, iv, client_iv),
            Cipher(chosen_cipher[0]),
            TextEncoding(chosen_encoding[0]),
            self.rng,
        )

    async def read_hello(self, conn: Accepted, keys: LegacyKeys) -> dict[str, Any]:
        """Read the client HELLO (encrypted or in clear)."""
        try:
            frame = await conn.peer.recv(self.config.reply_timeout)
        except (PeerClosed, trio.TooSlowError) as exc:
            raise Failed("the client HELLO", describe_failure(exc)) from None
        try:
            message = keys.open(frame)
        except ValueError:
            message = decode_json(frame)
        except Exception as exc:
            raise Failed("a client HELLO sealed with the agreed key", type(exc).__name__) from None
        if message.msg_type is not MessageType.HELLO or not isinstance(message.payload, dict):
            raise Failed("a HELLO", message.msg_type.value)
        return dict(message.payload)

    async def session(
        self,
        *,
        offer: dict[str, Any] | None = None,
        cipher: str | None = "",
        encoding: str | None = "",
    ) -> ClientSession:
        """Accept, open, handshake and read the client HELLO."""
        conn = await self.accept()
        await self.opening(conn, offer)
        material = await self.read_material(conn)
        keys = await self.respond(conn, material, cipher=cipher, encoding=encoding)
        hello = await self.read_hello(conn, keys)
        return ClientSession(conn, keys, material, hello)

    # -- the echo contract -------------------------------------------------

    def echo_message(self, data: dict[str, Any], kind: str = ECHO) -> HiveMessage:
        """A BUS message for the client to echo."""
        return HiveMessage(MessageType.BUS, bus_message(kind, data, {"source": "hive"}))

    async def wait_echo(
        self,
        session: ClientSession,
        data: dict[str, Any],
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> HiveMessage | None:
        """Wait for the echo of the BUS carrying ``data``; others go to the backlog."""
        deadline = trio.current_time() + (timeout or self.config.reply_timeout)
        while (left := deadline - trio.current_time()) > 0:
            try:
                message = await session.recv(left)
            except trio.TooSlowError:
                return None
            payload = message.payload
            bus = message.msg_type is MessageType.BUS and isinstance(payload, dict)
            if bus and payload.get("data") == data:  # type: ignore[union-attr]
                return message
            session.backlog.append(message)
        return None

    async def echo(
        self,
        session: ClientSession,
        data: dict[str, Any] | None = None,
        *,
        binary: bool = False,
        compress: bool = True,
    ) -> HiveMessage:
        """Send a BUS and require its echo.

        Raises:
            Failed: no echo.
        """
        data = data if data is not None else {"nonce": self.rng(8).hex()}
        await session.send(self.echo_message(data), binary=binary, compress=compress)
        try:
            echoed = await self.wait_echo(session, data)
        except PeerClosed as exc:
            raise Failed("the BUS echoed back", describe_failure(exc)) from None
        if echoed is None:
            raise Failed("the BUS echoed back (client echo contract, docs/spec §9.2)", "no echo")
        return echoed


@functools.cache
def harness_pubkey() -> str:
    """An RSA-2048 public key in PEM form for the harness HELLO (made once per process)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode("ascii")


def _choice(wanted: str | None, offered: Any, default: str) -> tuple[str, bool]:
    """(name, include-in-response)."""
    if wanted is None:
        return default, False
    if wanted == "":
        names = offered if isinstance(offered, list) and offered else [default]
        return str(names[0]), True
    return wanted, True


Launch = Callable[[str], AbstractAsyncContextManager[Any]]


def client_context_factory(
    launch: Launch, port: int = 0
) -> Callable[
    [Case, RunConfig, random.Random, list[LogEntry]], AbstractAsyncContextManager[ClientContext]
]:
    """Context factory of client mode: a scripted hub and one client run per case."""

    @asynccontextmanager
    async def factory(
        case: Case, config: RunConfig, rng: random.Random, log: list[LogEntry]
    ) -> AsyncIterator[ClientContext]:
        server = ScriptedHubServer(log, port=port, close_timeout=config.close_timeout)
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(server.serve)
            try:
                async with launch(f"ws://127.0.0.1:{bound}"):
                    yield ClientContext(config, rng, log, server)
            finally:
                server.finish()
                nursery.cancel_scope.cancel()

    return factory


@asynccontextmanager
async def exec_launcher(template: str, url: str) -> AsyncIterator[trio.Process]:
    """Start ``template`` (``{url}`` replaced) as a process for one case; stop it after."""
    argv = shlex.split(template.replace("{url}", url))
    process = await trio.lowlevel.open_process(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield process
    finally:
        with trio.CancelScope(shield=True):
            if process.returncode is None:
                process.terminate()
                with trio.move_on_after(2):
                    await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()


def need_noise(material: dict[str, Any]) -> dict[str, Any]:
    """The client's Noise message 1, or skip when the client answered with legacy material."""
    noise = material.get("noise")
    if not isinstance(noise, dict):
        raise Skipped("the client does not speak the Noise handshake")
    return noise


def iv_of(envelope: Any) -> bytes:
    """The IV of a client envelope (a malformed one fails the case)."""
    try:
        return envelope_iv(envelope)
    except Exception:
        raise Failed("a well-formed client envelope", repr(envelope)) from None
