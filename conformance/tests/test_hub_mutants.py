"""Mutation self-test, hub mode: every passing hub case FAILs against a broken hub.

Each mutant is the reference hub with one deliberate defect: a hook method
overridden, a configuration changed, or one function of the protocol core
replaced for the duration of the test (monkeypatch), as mutation testing does.
The cases it targets must grade FAIL (NON_STRICT for SHOULD cases).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio
from hivemind_conformance import Grade, Level, Profile, RunConfig
from hivemind_conformance._runner import check_hub
from hivemind_conformance.cases import HUB_CASES
from hivemind_conformance.reference_hub import ReferenceHub, serve_reference_hub
from hivemind_conformance.selfcheck import TEST, hub_run_config, reference_hub_config
from hivemind_proto import (
    Authorization,
    CodecError,
    HiveMessage,
    MessageType,
    RemoteProtocolError,
    _connection,
    _negotiation,
    _record,
    _wire1,
)
from hivemind_proto._json_codec import encode_json
from hivemind_proto._state import Input
from hivemind_proto.hazmat import envelope_iv
from hivemind_proto.trio import _channel, _server

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
    seed=11,
)
Patch = Callable[[pytest.MonkeyPatch], None]


@dataclass
class HubMutant:
    name: str
    targets: tuple[str, ...]
    patch: Patch | None = None
    hub: type[ReferenceHub] = ReferenceHub
    config: dict[str, Any] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)


# -- hub subclasses ------------------------------------------------------------


class AcceptAnyKey(ReferenceHub):
    def lookup(self, access_key: str) -> Any:
        return self.config.clients[TEST.access_key]


class OnePeerPerKey(ReferenceHub):
    def peer_name(self, auth: Authorization, record: Any, session: dict[str, Any]) -> str:
        return f"{auth.useragent}::{record.client_id}"


class HelloWithoutPeer(ReferenceHub):
    def hello_payload(self, auth: Authorization, record: Any) -> dict[str, Any]:
        hello = super().hello_payload(auth, record)
        del hello["peer"]
        return hello


class DeafAgent(ReferenceHub):
    def agent(self, kind: str, data: dict[str, Any], context: dict[str, Any]) -> None:
        return None


class DefaultSessionOk(ReferenceHub):
    def refuses_default(self, record: Any) -> bool:
        return False


class NoContextRewrite(ReferenceHub):
    def agent(self, kind: str, data: dict[str, Any], context: dict[str, Any]) -> None:
        super().agent(kind, data, {**context, "peer": "somebody-else"})


class AclBypass(ReferenceHub):
    def admit(self, record: Any, kind: str) -> bool:
        return True


class SilentDenial(ReferenceHub):
    def deny(self, peer: str, denied_type: str, code: str) -> None:
        return None


class ReplyToAll(ReferenceHub):
    def deliver(self, message: HiveMessage) -> None:
        for registered in list(self.peers.values()):
            registered.channel.send_nowait(message)


class AnyoneBroadcasts(ReferenceHub):
    def may_send(self, record: Any, kind: MessageType) -> bool:
        return kind is MessageType.BROADCAST or super().may_send(record, kind)


class IgnorePermissions(ReferenceHub):
    def may_send(self, record: Any, kind: MessageType) -> bool:
        return True


class BroadcastToSender(ReferenceHub):
    def relay(self, sender: str, inner: HiveMessage) -> None:
        for registered in list(self.peers.values()):
            registered.channel.send_nowait(inner)


class PingEveryTime(ReferenceHub):
    def ping(self, ping: HiveMessage) -> None:
        self.floods = []
        super().ping(ping)


class NoSiteInjection(ReferenceHub):
    async def local_wrapper(self, peer: str, message: HiveMessage) -> None:
        if message.inner.msg_type is MessageType.PING:
            await super().local_wrapper(peer, message)


# -- core patches ----------------------------------------------------------------


def lenient_auth(mp: pytest.MonkeyPatch) -> None:
    original = _server.authorization_from_target

    def parse(target: str) -> Authorization:
        try:
            return original(target)
        except RemoteProtocolError:
            return Authorization("anonymous", TEST.access_key)

    mp.setattr(_server, "authorization_from_target", parse)


def raw_auth(mp: pytest.MonkeyPatch) -> None:
    from hivemind_proto import parse_authorization

    mp.setattr(
        _server,
        "authorization_from_target",
        lambda target: parse_authorization(target.partition("authorization=")[2]),
    )


def hello_last(mp: pytest.MonkeyPatch) -> None:
    original = _connection.Connection.start

    def start(self: Any) -> None:
        original(self)
        self._outbox.reverse()

    mp.setattr(_connection.Connection, "start", start)


def offer_edit(**changes: Any) -> Patch:
    def patch(mp: pytest.MonkeyPatch) -> None:
        original = _connection.Connection._build_offer

        def build(self: Any, settings: Any) -> dict[str, Any]:
            offer = original(self, settings)
            for key, value in changes.items():
                if value is None:
                    offer.pop(key, None)
                else:
                    offer[key] = value
            return offer

        mp.setattr(_connection.Connection, "_build_offer", build)

    return patch


def reflects_iv(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(
        _connection.Connection, "_fresh_iv", lambda self, envelope: bytes.fromhex(envelope[:16])
    )


def last_choice(mp: pytest.MonkeyPatch) -> None:
    def negotiate(payload: dict[str, Any], **kw: Any) -> Any:
        reversed_payload = dict(payload)
        for name in ("ciphers", "encodings"):
            if isinstance(payload.get(name), list):
                reversed_payload[name] = list(reversed(payload[name]))
        return _negotiation.negotiate(reversed_payload, **kw)

    mp.setattr(_connection, "negotiate", negotiate)


def default_b64(mp: pytest.MonkeyPatch) -> None:
    def negotiate(payload: dict[str, Any], **kw: Any) -> Any:
        payload = dict(payload)
        payload.setdefault("encodings", ["JSON-B64"])
        payload.setdefault("ciphers", ["CHACHA20-POLY1305"])
        return _negotiation.negotiate(payload, **kw)

    mp.setattr(_connection, "negotiate", negotiate)


def fallback_choice(mp: pytest.MonkeyPatch) -> None:
    original = _negotiation.choose

    def choose(offered: Any, allowed: Any, default: Any) -> Any:
        allowed = list(allowed)
        try:
            return original(offered, allowed, default)
        except RemoteProtocolError:
            return allowed[0]

    mp.setattr(_negotiation, "choose", choose)


def material_handler(wrap: Callable[[Callable[..., Any]], Callable[..., Any]]) -> Patch:
    def patch(mp: pytest.MonkeyPatch) -> None:
        handlers = _connection._HANDLERS
        mp.setitem(handlers, Input.RECV_MATERIAL, wrap(handlers[Input.RECV_MATERIAL]))

    return patch


def _answers_anything(original: Callable[..., Any]) -> Callable[..., Any]:
    def handler(self: Any, message: HiveMessage, encrypted: bool) -> Any:
        if "envelope" not in message.payload:  # type: ignore[operator]
            fake = {"envelope": "00" * 24, "encoding": "JSON-HEX", "cipher": "AES-GCM"}
            self._queue_plain(HiveMessage(MessageType.HANDSHAKE, fake))
            return []
        return original(self, message, encrypted)

    return handler


def _no_rekey(original: Callable[..., Any]) -> Callable[..., Any]:
    def handler(self: Any, message: HiveMessage, encrypted: bool) -> Any:
        if self._profile is not None:
            return []
        return original(self, message, encrypted)

    return handler


def _loose_iv(envelope: Any) -> bytes:
    try:
        return envelope_iv(envelope)
    except RemoteProtocolError:
        return b"\x00" * 8


def no_envelope_verify(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(_connection, "verify_envelope", lambda pw, env, own_iv=None: _loose_iv(env))


def clear_hello_refused(mp: pytest.MonkeyPatch) -> None:
    original = _connection.Connection._check_cleartext

    def check(self: Any, inp: Input) -> None:
        if inp is Input.RECV_HELLO and self._profile is not None:
            raise RemoteProtocolError("mutant: cleartext HELLO refused")
        original(self, inp)

    mp.setattr(_connection.Connection, "_check_cleartext", check)


def cleartext_replies(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(_record.LegacyRecord, "seal", lambda self, message: encode_json(message))


def unknown_codes_as_bus(mp: pytest.MonkeyPatch) -> None:
    original = _wire1._read_type

    def read_type(reader: Any, allow: bool) -> MessageType:
        try:
            return original(reader, allow)
        except CodecError:
            return MessageType.BUS

    mp.setattr(_wire1, "_read_type", read_type)


def binarize_text(mp: pytest.MonkeyPatch) -> None:
    original = _record.LegacyRecord.seal

    def seal(self: Any, message: HiveMessage) -> Any:
        if message.msg_type is MessageType.BINARY:
            return original(self, message)
        return _record.seal_json_frame(
            encode_json(message).encode(),
            cipher=self.cipher,
            key=self.key,
            encoding=self.encoding,
            rng=self.rng,
        )

    mp.setattr(_record.LegacyRecord, "seal", seal)


def never_compress(mp: pytest.MonkeyPatch) -> None:
    original = _record.encode_wire1
    mp.setattr(
        _record,
        "encode_wire1",
        lambda message, compression=None: original(message, compression=_wire1.Compression.NEVER),
    )


def noise_bad_prologue(mp: pytest.MonkeyPatch) -> None:
    original = _connection.noise_prologue
    mp.setattr(_connection, "noise_prologue", lambda *a: b"mutant" + original(*a))


def wrong_close_code(mp: pytest.MonkeyPatch) -> None:
    original = _channel.HiveChannel._fail

    async def fail(self: Any, exc: RemoteProtocolError) -> None:
        exc.close_code = 1011
        await original(self, exc)

    mp.setattr(_channel.HiveChannel, "_fail", fail)


def _repeating(n: int) -> bytes:
    return b"\x01" * n if n in (12, 16) else os.urandom(n)


class UnverifiedIntercom(ReferenceHub):
    def signed(self, me: Any, message: HiveMessage) -> bool:
        return True


MUTANTS = [
    HubMutant("accept_any_key", ("H01", "H17"), hub=AcceptAnyKey),
    HubMutant("lenient_auth", ("H02", "H02-S", "X01"), patch=lenient_auth),
    HubMutant("raw_auth", ("H02b",), patch=raw_auth),
    HubMutant("huge_frames", ("H46",), config={"max_frame_bytes": 1 << 20},
              run={"max_frame_bytes": 256 * 1024}),
    HubMutant("one_peer_per_key", ("H48", "H29"), hub=OnePeerPerKey),
    HubMutant("strict_envelope", ("H43", "H43-S"), patch=shared.strict_envelope),
    HubMutant("hello_last", ("H03",), patch=hello_last),
    HubMutant("hello_without_peer", ("H04",), hub=HelloWithoutPeer),
    HubMutant("offer_missing_field", ("H05",), patch=offer_edit(crypto_required=None)),
    HubMutant("offer_denies_password", ("H06",), patch=offer_edit(password=False)),
    HubMutant("reflects_iv", ("H07",), patch=reflects_iv),
    HubMutant("deaf_agent", ("H08", "H36", "H38"), hub=DeafAgent),
    HubMutant("last_choice", ("H09",), patch=last_choice),
    HubMutant("default_b64", ("H10",), patch=default_b64),
    HubMutant("fallback_choice", ("H11",), patch=fallback_choice),
    HubMutant("answers_anything", ("H12", "H15"), patch=material_handler(_answers_anything)),
    HubMutant("no_envelope_verify", ("H13", "H14"), patch=no_envelope_verify),
    HubMutant("no_rekey", ("H20",), patch=material_handler(_no_rekey)),
    HubMutant("clear_hello_refused", ("H21",), patch=clear_hello_refused),
    HubMutant("default_session_ok", ("H23",), hub=DefaultSessionOk),
    HubMutant("never_times_out", ("H47",), config={"handshake_timeout": 60.0},
              run={"handshake_timeout": 0.5}),
    HubMutant("cleartext_replies", ("H18",), patch=cleartext_replies),
    HubMutant("nonce_reuse", ("H19",), config={"rng": _repeating}),
    HubMutant("accepts_cleartext", ("H24",), patch=shared.accepts_cleartext),
    HubMutant("ignores_bad_frames", ("H25", "X02", "X03", "N02", "N03", "N04"),
              patch=shared.ignores_bad_frames, config={"handshake_timeout": 30.0}),
    HubMutant("unknown_codes_as_bus", ("H39",), patch=unknown_codes_as_bus),
    HubMutant("binarize_text", ("H37", "H37-S"), patch=binarize_text),
    HubMutant("never_compress", ("H37-S",), patch=never_compress),
    HubMutant("rejects_binary", ("H38", "H38-S"), patch=shared.rejects_binary),
    HubMutant("inflate_all", ("H38-S",), patch=shared.inflate_all),
    HubMutant("no_context_rewrite", ("H26",), hub=NoContextRewrite),
    HubMutant("acl_bypass", ("H27", "H27-S"), hub=AclBypass),
    HubMutant("silent_denial", ("H27-S",), hub=SilentDenial),
    HubMutant("reply_to_all", ("H29", "H48"), hub=ReplyToAll),
    HubMutant("anyone_broadcasts", ("H32", "H32-S"), hub=AnyoneBroadcasts),
    HubMutant("broadcast_to_sender", ("H33",), hub=BroadcastToSender),
    HubMutant("ignore_permissions", ("H34", "H34-S"), hub=IgnorePermissions),
    HubMutant("ping_every_time", ("H35",), hub=PingEveryTime),
    HubMutant("no_site_injection", ("H36",), hub=NoSiteInjection),
    HubMutant("unverified_intercom", ("H51",), hub=UnverifiedIntercom),
    HubMutant("noise_bad_prologue", ("N01",), patch=noise_bad_prologue),
    HubMutant("wrong_close_code", ("H50", "H13"), patch=wrong_close_code),
]  # fmt: skip


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
async def test_mutant_hub_fails_its_target_cases(
    mutant: HubMutant, monkeypatch: pytest.MonkeyPatch
) -> None:
    if mutant.patch is not None:
        mutant.patch(monkeypatch)
    hub_config = reference_hub_config(**mutant.config)
    with trio.fail_after(40):
        async with trio.open_nursery() as nursery:
            hub = mutant.hub(hub_config)
            port = await nursery.start(
                lambda task_status: serve_reference_hub(
                    hub_config, hub=hub, task_status=task_status
                )
            )
            config = hub_run_config(BASE, f"ws://127.0.0.1:{port}", hub_config)
            config = dataclasses.replace(config, **mutant.run)
            results = await check_hub(config, mutant.targets)
            nursery.cancel_scope.cancel()
    grades = {r.case.check: r.grade for r in results}
    assert set(grades) == set(mutant.targets)
    for result in results:
        wanted = Grade.NON_STRICT if result.case.level is Level.SHOULD else Grade.FAIL
        assert result.grade is wanted, f"{mutant.name}: {result.case.id} graded {result.grade}"


def test_every_graded_hub_case_has_a_mutant() -> None:
    targeted = {t for m in MUTANTS for t in m.targets}
    graded = {c.check for c in HUB_CASES if c.level is not Level.INFO}
    assert graded <= targeted, sorted(graded - targeted)
