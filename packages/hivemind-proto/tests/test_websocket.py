"""HiveWebSocket: the protocol over raw bytes, whole, byte by byte and fuzzed."""

from __future__ import annotations

import hashlib
import os

import pytest
from hivemind_proto import (
    Authorization,
    CloseCode,
    ConnectionClosed,
    HandshakeComplete,
    HelloReceived,
    HiveMessage,
    HiveWebSocket,
    HubSettings,
    MessageReceived,
    MessageType,
    RemoteProtocolError,
    Role,
    SatelliteSettings,
    State,
    bus_message,
)
from hivemind_proto.testing import TEST_PASSWORD, hub_hello, satellite_hello
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ACCESS_KEY = "f00dfeedf00dfeedf00dfeedf00dfeed"
UTTERANCE = HiveMessage(
    MessageType.BUS, bus_message("recognizer_loop:utterance", {"utterances": ["hi"]})
)


def counter_rng(seed: bytes):
    """A deterministic rng, so a recorded stream can be replayed."""
    state = {"n": 0}

    def rng(n: int) -> bytes:
        out = b""
        while len(out) < n:
            state["n"] += 1
            out += hashlib.sha256(seed + state["n"].to_bytes(8, "big")).digest()
        return out[:n]

    return rng


def authenticate(auth: Authorization) -> HubSettings | None:
    if auth.access_key != ACCESS_KEY:
        return None
    return HubSettings(hello=hub_hello(), password=TEST_PASSWORD)


def endpoints(seed: bytes = b"s") -> tuple[HiveWebSocket, HiveWebSocket]:
    hub = HiveWebSocket(Role.HUB, rng=counter_rng(b"hub" + seed), authenticate=authenticate)
    sat = HiveWebSocket(
        Role.SATELLITE,
        rng=counter_rng(b"sat" + seed),
        settings=SatelliteSettings(password=TEST_PASSWORD, hello=satellite_hello()),
        access_key=ACCESS_KEY,
    )
    return hub, sat


def converse(hub: HiveWebSocket, sat: HiveWebSocket, rounds: int = 10) -> tuple[bytes, list, list]:
    """Run both ends to quiet; return the hub->satellite bytes and both event lists."""
    hub_to_sat, hub_events, sat_events = bytearray(), [], []
    for _ in range(rounds):
        up, down = sat.data_to_send(), hub.data_to_send()
        if not up and not down:
            break
        if up:
            hub_events += hub.receive_data(up)
        if down:
            hub_to_sat += down
            sat_events += sat.receive_data(down)
    return bytes(hub_to_sat), hub_events, sat_events


def test_handshake_and_messages_over_bytes() -> None:
    hub, sat = endpoints()
    _, hub_events, sat_events = converse(hub, sat)
    assert [type(e) for e in sat_events] == [HelloReceived, HandshakeComplete]
    assert [type(e) for e in hub_events] == [HandshakeComplete, HelloReceived]
    sat.send(UTTERANCE)
    assert hub.receive_data(sat.data_to_send()) == [MessageReceived(UTTERANCE, True)]
    hub.send(UTTERANCE)
    assert sat.receive_data(hub.data_to_send()) == [MessageReceived(UTTERANCE, True)]


@pytest.fixture(autouse=True)
def fixed_upgrade_nonce(monkeypatch: pytest.MonkeyPatch) -> None:
    """wsproto draws the Sec-WebSocket-Key from os.urandom; replay needs it fixed."""
    import wsproto.handshake

    monkeypatch.setattr(wsproto.handshake, "generate_nonce", lambda: b"dGhlIHNhbXBsZSBub25jZQ==")


def recorded_session() -> tuple[bytes, list]:
    """Every byte the hub sent in a full session, and the satellite's events."""
    hub, sat = endpoints()
    stream, _, events = converse(hub, sat)
    hub.send(UTTERANCE)
    hub.send(HiveMessage(MessageType.BINARY, bytes(range(256)) * 20))
    more, _, more_events = converse(hub, sat)
    return stream + more, events + more_events


def replay(stream: bytes, cuts: list[int]) -> list:
    """Feed a recorded hub stream to a fresh satellite, cut at ``cuts``."""
    _, sat = endpoints()
    events, start = [], 0
    for cut in [*sorted(set(cuts)), len(stream)]:
        events += sat.receive_data(stream[start:cut])
        start = cut
    return events


def test_byte_by_byte_yields_the_same_events() -> None:
    stream, whole = recorded_session()
    assert len(whole) >= 2
    assert replay(stream, list(range(1, len(stream)))) == whole


@given(data=st.data())
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_chunking_yields_the_same_events(data: st.DataObject) -> None:
    stream, whole = recorded_session()
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=40))
    assert replay(stream, cuts) == whole


@pytest.mark.parametrize("role", [Role.HUB, Role.SATELLITE])
@given(data=st.binary(max_size=600), cuts=st.lists(st.integers(0, 600), max_size=8))
@settings(max_examples=120, deadline=None)
def test_arbitrary_bytes_raise_only_remote_protocol_error(
    role: Role, data: bytes, cuts: list[int]
) -> None:
    hub, sat = endpoints()
    endpoint = hub if role is Role.HUB else sat
    start = 0
    for cut in [*sorted(c for c in set(cuts) if c <= len(data)), len(data)]:
        try:
            endpoint.receive_data(data[start:cut])
        except RemoteProtocolError:
            assert endpoint.closed
            return
        start = cut


@given(prefix_len=st.integers(0, 4000), noise=st.binary(min_size=1, max_size=64))
@settings(max_examples=60, deadline=None)
def test_valid_prefix_then_garbage_fails_closed(prefix_len: int, noise: bytes) -> None:
    stream, _ = recorded_session()
    _, sat = endpoints()
    try:
        sat.receive_data(stream[: min(prefix_len, len(stream))] + noise)
    except RemoteProtocolError:
        assert sat.closed
        assert sat.connection is None or sat.connection.state in (
            State.ERROR,
            State.READY,
            State.AWAITING_OFFER,
            State.AWAITING_HELLO,
            State.AWAITING_RESPONSE,
        )


def test_unknown_access_key_gets_1008_and_no_hello() -> None:
    hub = HiveWebSocket(Role.HUB, rng=os.urandom, authenticate=authenticate)
    sat = HiveWebSocket(
        Role.SATELLITE,
        rng=os.urandom,
        settings=SatelliteSettings(password=TEST_PASSWORD, hello=satellite_hello()),
        access_key="someone-else",
    )
    with pytest.raises(RemoteProtocolError) as info:
        hub.receive_data(sat.data_to_send())
    assert info.value.close_code == CloseCode.POLICY_VIOLATION
    events = sat.receive_data(hub.data_to_send())
    assert events == [ConnectionClosed(CloseCode.POLICY_VIOLATION)]


def test_oversized_message_closes_1009() -> None:
    hub, sat = endpoints()
    converse(hub, sat)
    big = HiveMessage(MessageType.BINARY, b"x" * (11 * 1024 * 1024))
    sat.send(big)
    with pytest.raises(RemoteProtocolError) as info:
        hub.receive_data(sat.data_to_send())
    assert info.value.close_code == CloseCode.MESSAGE_TOO_BIG
