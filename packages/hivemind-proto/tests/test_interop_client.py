"""The released client (hivemind-bus-client 0.4.x) end to end against our hub.

A tiny echo hub built on ``hivemind_proto.trio.serve_hive`` listens on
127.0.0.1 (port 0). The real ``HiveMessageBusClient`` runs in the interop
virtualenv (tests/interop/bus_client_session.py), one process for every case
in a row: it connects, completes the password handshake, sends a BUS
``recognizer_loop:utterance`` and waits for the echo on its own bus handlers.

Each access key maps to its own ``HubSettings``, so a case forces the
selection by allowing a single cipher and a single encoding, or turns
``binarize`` on (the hub then sends compressed WIRE-1 binary frames). Both
ends are observed: the driver prints what the client saw (inbound frame
kinds, the negotiated cipher and encoding, the close frame) and the hub
records every event of every session.

Cases that use the ``bound`` mode register the released protocol handlers
before the socket opens (the released ``connect()`` does it after, see the
driver's docstring); one ``connect`` case runs ``connect()`` exactly as
released, race and five-second fallback included.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hivemind_proto import (
    Authorization,
    Cipher,
    CloseCode,
    HandshakeComplete,
    HelloReceived,
    HubSettings,
    MessageReceived,
    MessageType,
    TextEncoding,
)
from hivemind_proto.hazmat import HUB_ENCODINGS
from hivemind_proto.trio import HiveChannel, serve_hive

pytestmark = pytest.mark.interop

DRIVER = Path(__file__).parent / "interop" / "bus_client_session.py"

PASSWORD = "correct horse battery staple ✓"
NODE_ID = "interop-hub"
UTTERANCE_TYPE = "recognizer_loop:utterance"


def _rsa_public_pem() -> str:
    """A parseable RSA public key, as hivemind-core puts in its HELLO."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


HUB_PUBKEY = _rsa_public_pem()


def _hello(pubkey: str | None = HUB_PUBKEY) -> dict[str, Any]:
    return {"pubkey": pubkey, "peer": "interop-driver::127.0.0.1", "node_id": NODE_ID}


@dataclass(frozen=True)
class Case:
    """One client session: its access key, the hub's settings for it, the driver mode."""

    id: str
    settings: HubSettings | None
    mode: str = "bound"
    password: str = PASSWORD

    @property
    def key(self) -> str:
        return f"key-{self.id}"


FORCED = [
    Case(
        f"{cipher.value}/{encoding.value}",
        HubSettings(
            hello=_hello(),
            password=PASSWORD,
            allowed_ciphers=(cipher,),
            allowed_encodings=(encoding,),
        ),
    )
    for cipher in Cipher
    for encoding in HUB_ENCODINGS
]
BINARIZED = [
    Case(
        f"{cipher.value}/binarize",
        HubSettings(hello=_hello(), password=PASSWORD, allowed_ciphers=(cipher,), binarize=True),
    )
    for cipher in Cipher
]
DEFAULTS = HubSettings(hello=_hello(), password=PASSWORD)
AS_RELEASED = Case(
    "as-released", HubSettings(hello=_hello(), password=PASSWORD, binarize=True), "connect"
)
NO_PUBKEY = Case("no-pubkey", HubSettings(hello=_hello(None), password=PASSWORD))
WRONG_PASSWORD = Case("wrong-password", DEFAULTS, password="not the password")
UNKNOWN_KEY = Case("unknown-key", None)
CASES = [*FORCED, *BINARIZED, AS_RELEASED, NO_PUBKEY, WRONG_PASSWORD, UNKNOWN_KEY]
# Keys must survive the driver's ``ID,MODE,KEY,PASSWORD`` argv format.
assert all("," not in c.key and "," not in c.id for c in CASES)


@dataclass
class Session:
    """What the hub saw of one access key."""

    authenticated: int = 0
    handler_calls: int = 0
    handshake: HandshakeComplete | None = None
    hello: HelloReceived | None = None
    received: list[MessageReceived] = field(default_factory=list)


def _driver_env(home: Path) -> dict[str, str]:
    """A private HOME: the released client writes its identity files there."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_STATE_HOME": str(home / "state"),
    }


async def _run(python: str, home: Path) -> tuple[dict[str, dict], dict[str, Session], str]:
    by_key = {c.key: c for c in CASES}
    sessions = {c.key: Session() for c in CASES}

    async def authenticate(auth: Authorization) -> HubSettings | None:
        case = by_key.get(auth.access_key)
        if case is None:
            return None
        sessions[case.key].authenticated += 1
        return case.settings

    async def echo(channel: HiveChannel, auth: Authorization) -> None:
        session = sessions[auth.access_key]
        session.handler_calls += 1
        session.handshake, session.hello = channel.handshake, channel.hello
        while True:
            event = await channel.receive_event()
            if isinstance(event, MessageReceived):
                session.received.append(event)
                await channel.send(event.message)

    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(
                lambda task_status: serve_hive(
                    authenticate, echo, "127.0.0.1", 0, rng=os.urandom, task_status=task_status
                )
            )
            argv = [python, str(DRIVER), "127.0.0.1", str(port)]
            argv += [f"{c.id},{c.mode},{c.key},{c.password}" for c in CASES]
            proc = await trio.run_process(
                argv,
                capture_stdout=True,
                capture_stderr=True,
                check=False,
                env=_driver_env(home),
            )
            nursery.cancel_scope.cancel()
    stderr = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, stderr[-4000:]
    verdicts = [json.loads(line) for line in proc.stdout.decode().splitlines() if line.strip()]
    return {v["id"]: v for v in verdicts}, sessions, stderr


@pytest.fixture(scope="module")
def interop(tmp_path_factory: pytest.TempPathFactory, interop_python: str) -> dict[str, Any]:
    python = interop_python
    verdicts, sessions, stderr = trio.run(_run, python, tmp_path_factory.mktemp("client-home"))
    assert sorted(verdicts) == sorted(c.id for c in CASES), stderr[-4000:]
    return {"verdicts": verdicts, "sessions": sessions, "stderr": stderr}


def _session_ok(interop: dict[str, Any], case: Case) -> tuple[dict, Session]:
    """Common checks of a session that must succeed; returns both views."""
    verdict, session = interop["verdicts"][case.id], interop["sessions"][case.key]
    assert verdict["error"] is None, verdict
    assert verdict["handshake"] is True, (verdict, interop["stderr"][-3000:])
    assert verdict["hello"] == json.loads(json.dumps(dict(case.settings.hello)))
    assert session.handler_calls == 1
    # the client's HELLO came encrypted, with its site id and a real session
    assert session.hello is not None
    assert session.hello.encrypted is True
    assert session.hello.payload["site_id"] == "interop"
    assert session.hello.payload["session"]["session_id"] not in (None, "", "default")
    # its utterance reached the hub sealed, and came back to its bus handlers
    assert len(session.received) == 1
    inbound = session.received[0]
    assert inbound.encrypted is True
    assert inbound.message.msg_type is MessageType.BUS
    assert inbound.message.payload["type"] == UTTERANCE_TYPE
    assert inbound.message.payload["data"] == verdict["sent"]
    assert inbound.message.payload["context"]["session"]["site_id"] == "interop"
    assert not verdict["sent"]["utterances"][0].isascii()  # the non-ASCII path is exercised
    assert verdict["echo"] == {"type": UTTERANCE_TYPE, "data": verdict["sent"]}
    # the hub's offer and response are the only HANDSHAKE payloads it sent
    assert [("envelope" in keys) for keys in verdict["shakes"]] == [False, True]
    assert verdict["close"] is None
    return verdict, session


@pytest.mark.parametrize("case", FORCED, ids=[c.id for c in FORCED])
def test_every_cipher_and_encoding_round_trips(interop, case):
    verdict, session = _session_ok(interop, case)
    cipher, encoding = case.settings.allowed_ciphers[0], case.settings.allowed_encodings[0]
    assert (verdict["cipher"], verdict["encoding"]) == (cipher.value, encoding.value)
    assert session.handshake is not None
    assert (session.handshake.cipher, session.handshake.encoding) == (cipher, encoding)
    assert session.handshake.binarize is False
    # HELLO, offer, handshake response, then the sealed JSON echo
    assert verdict["frames"] == ["text", "text", "text", "text"]
    assert verdict["binarize"] is False


@pytest.mark.parametrize("case", BINARIZED, ids=[c.id for c in BINARIZED])
def test_binarized_sessions_use_wire1_frames_both_ways(interop, case):
    verdict, session = _session_ok(interop, case)
    cipher = case.settings.allowed_ciphers[0]
    assert session.handshake is not None
    assert session.handshake.binarize is True
    assert session.handshake.cipher is cipher
    assert verdict["cipher"] == cipher.value
    # the client saw binarize in the offer, so it sent its utterance as a
    # WIRE-1 frame; our echo is a sealed, compressed WIRE-1 binary frame
    assert verdict["binarize"] is True
    assert verdict["frames"] == ["text", "text", "text", "binary"]


def test_released_connect_works_unchanged(interop):
    verdict, session = _session_ok(interop, AS_RELEASED)
    assert session.handshake is not None
    # With every default allowed, our hub takes the client's first choice it
    # allows: the released client lists JSON-B91 first.
    assert session.handshake.encoding is TextEncoding.JSON_B91
    assert verdict["encoding"] == TextEncoding.JSON_B91.value
    assert verdict["cipher"] == session.handshake.cipher.value
    # Whether binarize engaged depends on the client's startup race; the
    # frames must match whichever way it went.
    expected_echo = "binary" if session.handshake.binarize else "text"
    assert verdict["binarize"] is session.handshake.binarize
    assert verdict["frames"] == ["text", "text", "text", expected_echo]


def test_hello_without_pubkey_is_enough_for_password_clients(interop):
    verdict, _ = _session_ok(interop, NO_PUBKEY)
    assert verdict["hello"]["pubkey"] is None


def test_wrong_password_is_closed_1008_without_an_envelope(interop):
    verdict = interop["verdicts"][WRONG_PASSWORD.id]
    session = interop["sessions"][WRONG_PASSWORD.key]
    assert verdict["handshake"] is False
    assert verdict["close"] is not None
    assert verdict["close"]["code"] == CloseCode.POLICY_VIOLATION
    # HELLO and the offer, then nothing: no hub envelope to attack offline
    assert verdict["frames"] == ["text", "text"]
    assert all("envelope" not in keys for keys in verdict["shakes"])
    assert verdict["echo"] is None
    assert session.authenticated == 1
    assert session.handler_calls == 0
    assert session.received == []


def test_unknown_access_key_is_closed_1008_before_hello(interop):
    verdict = interop["verdicts"][UNKNOWN_KEY.id]
    assert verdict["handshake"] is False
    assert verdict["close"] is not None
    assert verdict["close"]["code"] == CloseCode.POLICY_VIOLATION
    assert verdict["frames"] == []
    assert verdict["hello"] is None
    session = interop["sessions"][UNKNOWN_KEY.key]
    assert session.authenticated == 1
    assert session.handler_calls == 0
