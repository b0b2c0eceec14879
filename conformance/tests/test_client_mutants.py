"""Mutation self-test, client mode: every passing client case FAILs against a broken client.

Mutants are the reference testee with one protocol-core function replaced for
the duration of a test (monkeypatch), the testee with a different runner, or
a small raw client scripted from hazmat pieces for defects the protocol core
cannot be bent into (reusing an old key after reconnecting, re-sending
handshake material in a loop, ignoring a failed Noise handshake).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hivemind_conformance.testee as testee_module
import pytest
import trio
from cryptography.hazmat.primitives.ciphers import Cipher as RawCipher
from cryptography.hazmat.primitives.ciphers import algorithms
from hivemind_conformance import Grade, Level, Profile, RunConfig
from hivemind_conformance._clientctx import client_context_factory
from hivemind_conformance._peer import LegacyKeys, LogEntry, PeerClosed, open_client_peer
from hivemind_conformance._runner import run_cases, select
from hivemind_conformance.cases import CLIENT_CASES
from hivemind_conformance.selfcheck import TEST, launcher_for, reference_identity
from hivemind_conformance.testee import run_testee
from hivemind_proto import (
    Cipher,
    HiveMessage,
    MessageType,
    NoisePattern,
    NoiseSuite,
    RemoteProtocolError,
    StaticKeypair,
    TextEncoding,
    _ciphers,
    _connection,
    _frames,
    _password,
    _record,
    build_authorization,
    bus_message,
)
from hivemind_proto._state import Input
from hivemind_proto.hazmat import (
    NoiseHandshake,
    derive_session_key,
    envelope_iv,
    make_envelope,
    verify_envelope,
)
from hivemind_proto.trio import SatelliteIdentity, _client

_SHARED = Path(__file__).with_name("shared_mutants.py")
_spec = importlib.util.spec_from_file_location("conformance_shared_mutants", _SHARED)
shared = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(shared)

BASE = RunConfig(
    target="",
    client=TEST,
    profile=Profile.N,
    timeout=20,
    reply_timeout=3,
    quiet_timeout=0.5,
    close_timeout=2.0,
    nonce_samples=120,
    concurrency=4,
    seed=13,
)
Patch = Callable[[pytest.MonkeyPatch], None]
Runner = Callable[[str, SatelliteIdentity], Any]


@dataclass
class ClientMutant:
    name: str
    targets: tuple[str, ...]
    patch: Patch | None = None
    runner: Runner = run_testee
    noise: bool = False


# -- core patches -------------------------------------------------------------


def password_in_url(mp: pytest.MonkeyPatch) -> None:
    original = _client.build_authorization
    mp.setattr(
        _client,
        "build_authorization",
        lambda ua, key: original(ua, key) + "&password=" + TEST.password,
    )


def wrong_envelope(mp: pytest.MonkeyPatch) -> None:
    class Wrong(_password.PasswordHandshake):
        @property
        def envelope(self) -> str:
            return make_envelope("not-" + self.password, self.iv)

    mp.setattr(_connection, "PasswordHandshake", Wrong)


def ignores_choice(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(
        _connection,
        "accept_selection",
        lambda payload, ciphers, encodings: (next(iter(ciphers)), next(iter(encodings))),
    )


def hello_without_site(mp: pytest.MonkeyPatch) -> None:
    original = SatelliteIdentity.settings

    def settings(self: SatelliteIdentity, session_id: str) -> Any:
        built = original(self, session_id)
        hello = dict(built.hello)
        hello["site_id"] = None
        return type(built)(password=built.password, hello=hello)

    mp.setattr(SatelliteIdentity, "settings", settings)


def trusts_hub_envelope(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(_password, "verify_envelope", lambda pw, env, own_iv=None: envelope_iv(env))


def reflection_ok(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(_password, "verify_envelope", lambda pw, env, own_iv=None: verify_envelope(pw, env))


def skips_tag(mp: pytest.MonkeyPatch) -> None:
    """ChaCha20 decryption that never looks at the Poly1305 tag."""
    original = _ciphers.open_joined

    def open_joined(cipher: Cipher, key: Any, nonce: bytes, sealed: bytes) -> bytes:
        if cipher is not Cipher.CHACHA20_POLY1305:
            return original(cipher, key, nonce, sealed)
        stream = RawCipher(algorithms.ChaCha20(key.raw, b"\x01\x00\x00\x00" + nonce), None)
        return stream.decryptor().update(bytes(sealed[:-16]))

    mp.setattr(_frames, "open_joined", open_joined)


def always_binary(mp: pytest.MonkeyPatch) -> None:
    original = _record.LegacyRecord.seal

    def seal(self: Any, message: HiveMessage) -> Any:
        self.binarize = True
        return original(self, message)

    mp.setattr(_record.LegacyRecord, "seal", seal)


def echo_everything(mp: pytest.MonkeyPatch) -> None:
    def respond(message: HiveMessage, site_id: str) -> HiveMessage | None:
        if isinstance(message.payload, HiveMessage):
            return message.payload
        if message.msg_type is MessageType.SHARED_BUS:
            return HiveMessage(MessageType.BUS, message.payload)
        return message if message.msg_type is MessageType.BUS else None

    mp.setattr(testee_module, "respond", respond)


def strict_offer(mp: pytest.MonkeyPatch) -> None:
    known = {"handshake", "min_protocol_version", "max_protocol_version", "binarize"}
    known |= {"preshared_key", "password", "crypto_required", "encodings", "ciphers", "noise"}
    original = _connection._HANDLERS[Input.RECV_OFFER]

    def handler(self: Any, message: HiveMessage, encrypted: bool) -> Any:
        if set(message.payload) - known:  # type: ignore[arg-type]
            raise RemoteProtocolError("mutant: unknown offer key")
        return original(self, message, encrypted)

    mp.setitem(_connection._HANDLERS, Input.RECV_OFFER, handler)


# -- other runners --------------------------------------------------------------


async def repeating_nonces(url: str, identity: SatelliteIdentity) -> Any:
    return await run_testee(
        url, identity, rng=lambda n: b"\x01" * n if n in (12, 16) else os.urandom(n)
    )


async def reconnects_after_refusal(url: str, identity: SatelliteIdentity) -> None:
    for _ in range(20):
        await run_testee(url, identity)
        await trio.sleep(0.1)


async def _legacy_session(peer: Any, identity: SatelliteIdentity) -> LegacyKeys:
    await peer.recv_plain(5)
    await peer.recv_plain(5)
    iv = os.urandom(8)
    material = {
        "binarize": False,
        "encodings": ["JSON-HEX"],
        "ciphers": ["AES-GCM"],
        "envelope": make_envelope(identity.password, iv),
    }
    await peer.send_plain(HiveMessage(MessageType.HANDSHAKE, material))
    response = (await peer.recv_plain(5))["payload"]
    hub_iv = verify_envelope(identity.password, response["envelope"])
    keys = LegacyKeys(
        derive_session_key(identity.password, iv, hub_iv),
        Cipher(response.get("cipher", "AES-GCM")),
        TextEncoding(response.get("encoding", "JSON-HEX")),
        os.urandom,
    )
    hello = {"pubkey": None, "session": {"session_id": "raw", "site_id": "raw"}, "site_id": "raw"}
    await peer.send(keys.seal(HiveMessage(MessageType.HELLO, hello)))
    return keys


async def _echo_until_closed(peer: Any, keys: LegacyKeys) -> None:
    try:
        while True:
            message = keys.open(await peer.recv(30))
            if message.msg_type is MessageType.BUS:
                await peer.send(keys.seal(message))
    except PeerClosed:
        return


def _target(url: str, identity: SatelliteIdentity) -> str:
    return f"{url}/?authorization={build_authorization('RawMutant', identity.access_key)}"


async def reuses_key(url: str, identity: SatelliteIdentity) -> None:
    """After a reconnect, sends a frame sealed with the previous connection's key."""
    log: list[LogEntry] = []
    async with open_client_peer(_target(url, identity), log) as peer:
        keys = await _legacy_session(peer, identity)
        await _echo_until_closed(peer, keys)
    await trio.sleep(0.2)
    async with open_client_peer(_target(url, identity), log) as peer:
        await peer.recv_plain(5)
        await peer.recv_plain(5)
        stale = HiveMessage(MessageType.BUS, bus_message("stale", {}))
        await peer.send(keys.seal(stale))
        await trio.sleep(30)


async def material_loop(url: str, identity: SatelliteIdentity) -> None:
    """Re-sends handshake material every second, whatever the offer says."""
    async with open_client_peer(_target(url, identity), []) as peer:
        await peer.recv_plain(5)
        await peer.recv_plain(5)
        for _ in range(30):
            material = {
                "binarize": False,
                "envelope": make_envelope(identity.password, os.urandom(8)),
            }
            await peer.send_plain(HiveMessage(MessageType.HANDSHAKE, material))
            await trio.sleep(1)


async def never_aborts(url: str, identity: SatelliteIdentity) -> None:
    """Starts Noise without binding the negotiation and carries on whatever happens."""
    async with open_client_peer(_target(url, identity), []) as peer:
        await peer.recv_plain(5)
        await peer.recv_plain(5)
        hs = NoiseHandshake(
            NoisePattern.XXpsk2,
            NoiseSuite.CHACHAPOLY,
            initiator=True,
            static=StaticKeypair.generate(os.urandom),
            psk=b"\x00" * 32,
            prologue=b"",
            rng=os.urandom,
        )
        noise = {
            "pattern": "XXpsk2",
            "suite": NoiseSuite.CHACHAPOLY.value,
            "msg": hs.write_message(b"{}").hex(),
        }
        await peer.send_plain(HiveMessage(MessageType.HANDSHAKE, {"noise": noise}))
        await peer.recv(5)
        hello = {"pubkey": None, "session": {"session_id": "raw"}, "site_id": "raw"}
        await peer.send_plain(HiveMessage(MessageType.HELLO, hello))
        await trio.sleep(30)


MUTANTS = [
    ClientMutant("password_in_url", ("C01",), patch=password_in_url),
    ClientMutant("wrong_envelope", ("C02",), patch=wrong_envelope),
    ClientMutant("ignores_choice", ("C03", "C04"), patch=ignores_choice),
    ClientMutant("hello_without_site", ("C05",), patch=hello_without_site),
    ClientMutant("trusts_hub_envelope", ("C07", "C08"), patch=trusts_hub_envelope),
    ClientMutant("reflection_ok", ("C08",), patch=reflection_ok),
    ClientMutant("rejects_binary", ("C09", "C09-S"), patch=shared.rejects_binary),
    ClientMutant("inflate_all", ("C09-S",), patch=shared.inflate_all),
    ClientMutant("skips_tag", ("C10",), patch=skips_tag),
    ClientMutant("always_binary", ("C11",), patch=always_binary),
    ClientMutant("repeating_nonces", ("C12",), runner=repeating_nonces),
    ClientMutant("echo_everything", ("C14", "C15"), patch=echo_everything),
    ClientMutant("strict_offer", ("C16",), patch=strict_offer),
    ClientMutant("strict_envelope", ("C16-S",), patch=shared.strict_envelope),
    ClientMutant("reconnects_after_refusal", ("C17",), runner=reconnects_after_refusal),
    ClientMutant("reuses_key", ("C18",), runner=reuses_key),
    ClientMutant("material_loop", ("C21",), runner=material_loop),
    ClientMutant("never_aborts", ("C22", "CN01"), runner=never_aborts, noise=True),
    ClientMutant(
        "ignores_bad_frames", ("CN02", "CX01"), patch=shared.ignores_bad_frames, noise=True
    ),
    ClientMutant("accepts_cleartext", ("CX02",), patch=shared.accepts_cleartext),
]


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
async def test_mutant_client_fails_its_target_cases(
    mutant: ClientMutant, monkeypatch: pytest.MonkeyPatch
) -> None:
    if mutant.patch is not None:
        mutant.patch(monkeypatch)
    launch = launcher_for(reference_identity(noise=mutant.noise), mutant.runner)
    cases = select(CLIENT_CASES, Profile.N, mutant.targets)
    with trio.fail_after(40):
        results = await run_cases(cases, BASE, client_context_factory(launch))
    assert {r.case.check for r in results} == set(mutant.targets)
    for result in results:
        wanted = Grade.NON_STRICT if result.case.level is Level.SHOULD else Grade.FAIL
        assert result.grade is wanted, f"{mutant.name}: {result.case.id} graded {result.grade}"


def test_every_graded_client_case_has_a_mutant() -> None:
    targeted = {t for m in MUTANTS for t in m.targets}
    graded = {c.check for c in CLIENT_CASES if c.level is not Level.INFO}
    assert graded <= targeted, sorted(graded - targeted)
