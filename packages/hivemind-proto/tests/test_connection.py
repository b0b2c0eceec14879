"""Two Connections talking in memory: handshakes, messages, tampering, misuse."""

from __future__ import annotations

import json
import os

import pytest
from hivemind_proto import (
    BinaryType,
    Cipher,
    CloseCode,
    Connection,
    DecryptionError,
    HandshakeComplete,
    HelloReceived,
    HiveMessage,
    HubSettings,
    LocalProtocolError,
    MessageReceived,
    MessageType,
    NoiseIdentity,
    NoisePattern,
    NoiseSuite,
    Profile,
    RemoteProtocolError,
    Role,
    SatelliteSettings,
    State,
    StaticKeypair,
    TextEncoding,
    bus_message,
    encode_json,
)
from hivemind_proto.hazmat import SessionKey, make_envelope, seal_json_frame
from hivemind_proto.testing import (
    TEST_PASSWORD,
    ConnectionPair,
    hub_hello,
    satellite_hello,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .strategies import hive_messages

UTTERANCE = HiveMessage(
    MessageType.BUS, bus_message("recognizer_loop:utterance", {"utterances": ["hi"]})
)
ALL_SENDABLE = [
    UTTERANCE,
    HiveMessage(MessageType.SHARED_BUS, bus_message("speak", {"utterance": "x"})),
    HiveMessage(MessageType.BROADCAST, UTTERANCE, target_site_id="kitchen"),
    HiveMessage(MessageType.PROPAGATE, UTTERANCE).with_hop("a"),
    HiveMessage(MessageType.ESCALATE, UTTERANCE),
    HiveMessage(MessageType.QUERY, UTTERANCE, metadata={"query_id": "q1"}),
    HiveMessage(MessageType.CASCADE, UTTERANCE),
    HiveMessage(MessageType.PING, {"flood_id": "f", "peer": "p", "site_id": "s", "timestamp": 1.5}),
    HiveMessage(MessageType.RENDEZVOUS, {"cmd": "deposit"}),
    HiveMessage(MessageType.THIRDPRTY, {"anything": [1, 2]}),
    HiveMessage(MessageType.INTERCOM, {"ciphertext": "00", "signature": "00"}, target_pubkey="k"),
    HiveMessage(MessageType.BINARY, b"\x00\x01audio", bin_type=BinaryType.RAW_AUDIO),
]


def noise_pair(pin: bool = False, suite: NoiseSuite = NoiseSuite.CHACHAPOLY) -> ConnectionPair:
    hub_key, sat_key = StaticKeypair.generate(os.urandom), StaticKeypair.generate(os.urandom)
    return ConnectionPair.noise(
        os.urandom,
        NoiseIdentity(hub_key, pinned_peer=sat_key.public if pin else None, suites=(suite,)),
        NoiseIdentity(sat_key, pinned_peer=hub_key.public if pin else None),
    )


def ready_pair(kind: str) -> ConnectionPair:
    if kind == "legacy":
        pair = ConnectionPair(os.urandom)
    elif kind == "binarized":
        pair = ConnectionPair(
            os.urandom,
            HubSettings(hello=hub_hello(), password=TEST_PASSWORD, binarize=True),
            SatelliteSettings(password=TEST_PASSWORD, hello=satellite_hello(), binarize=True),
        )
    elif kind == "noise-kk":
        pair = noise_pair(pin=True)
    else:
        pair = noise_pair(suite=NoiseSuite.AESGCM if kind == "noise-aes" else NoiseSuite.CHACHAPOLY)
    pair.handshake()
    assert pair.hub.state is State.READY
    assert pair.satellite.state is State.READY
    return pair


KINDS = ["legacy", "binarized", "noise", "noise-aes", "noise-kk"]


def test_legacy_handshake_event_sequence() -> None:
    pair = ConnectionPair(os.urandom)
    transcript = pair.handshake()
    sat_events, hub_events = transcript.events_of(Role.SATELLITE), transcript.events_of(Role.HUB)
    assert [type(e) for e in sat_events] == [HelloReceived, HandshakeComplete]
    assert [type(e) for e in hub_events] == [HandshakeComplete, HelloReceived]
    assert sat_events[0].payload["node_id"] == hub_hello()["node_id"]
    assert hub_events[1].encrypted  # the satellite HELLO travels encrypted
    assert hub_events[1].payload["session"]["session_id"] == "test-session"
    done = hub_events[0]
    assert done.profile is Profile.LEGACY_PASSWORD
    assert (done.cipher, done.encoding) == (Cipher.CHACHA20_POLY1305, TextEncoding.JSON_B64)
    # hub HELLO and both HANDSHAKE replies are plaintext text frames
    first_three = [frame for _, frame in transcript.frames[:4]]
    assert all(isinstance(f, str) and '"msg_type": ' in f for f in first_three)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("message", ALL_SENDABLE, ids=lambda m: m.msg_type.value)
@pytest.mark.parametrize("hub_sends", [True, False], ids=["hub-sends", "satellite-sends"])
def test_every_message_type_both_directions(
    kind: str, message: HiveMessage, hub_sends: bool
) -> None:
    pair = ready_pair(kind)
    sender, receiver = (pair.hub, pair.satellite) if hub_sends else (pair.satellite, pair.hub)
    sender.send(message)
    frames = sender.data_to_send()
    assert len(frames) == 1
    events = receiver.receive_frame(frames[0])
    assert events == [MessageReceived(_representable(kind, message), True)]


def _representable(kind: str, message: HiveMessage) -> HiveMessage:
    """WIRE-1 frames cannot carry the outer route or target fields."""
    if kind.startswith("noise") or message.msg_type in (
        MessageType.INTERCOM,
        MessageType.THIRDPRTY,
    ):
        return message
    if kind != "binarized" and message.msg_type is not MessageType.BINARY:
        return message
    return message.replace(
        route=message.inner.route
        if message.msg_type
        in (
            MessageType.BROADCAST,
            MessageType.PROPAGATE,
            MessageType.ESCALATE,
            MessageType.QUERY,
            MessageType.CASCADE,
        )
        else (),
        target_site_id=None,
    )


def test_binarized_session_sends_binary_frames() -> None:
    pair = ready_pair("binarized")
    pair.hub.send(UTTERANCE)
    (frame,) = pair.hub.data_to_send()
    assert isinstance(frame, bytes)


@pytest.mark.parametrize("kind", ["noise", "noise-kk"])
def test_noise_frames_are_binary_and_reject_text(kind: str) -> None:
    pair = ready_pair(kind)
    pair.satellite.send(UTTERANCE)
    (frame,) = pair.satellite.data_to_send()
    assert isinstance(frame, bytes)
    with pytest.raises(RemoteProtocolError):
        pair.hub.receive_frame(encode_json(UTTERANCE))
    assert pair.hub.state is State.ERROR


def test_kk_handshake_reports_the_pinned_key() -> None:
    pair = noise_pair(pin=True)
    transcript = pair.handshake()
    (done,) = [e for e in transcript.events_of(Role.HUB) if isinstance(e, HandshakeComplete)]
    assert done.noise_protocol == "Noise_KKpsk0_25519_ChaChaPoly_SHA256"
    offer = json.loads(transcript.frames[1][1])["payload"]
    assert offer["noise"]["patterns"] == [NoisePattern.KKpsk0.value, NoisePattern.XXpsk2.value]


def test_noise_pin_contradiction_is_refused() -> None:
    hub_key, sat_key, other = (StaticKeypair.generate(os.urandom) for _ in range(3))
    pair = ConnectionPair.noise(
        os.urandom, NoiseIdentity(hub_key), NoiseIdentity(sat_key, pinned_peer=other.public)
    )
    with pytest.raises(RemoteProtocolError):
        pair.handshake()
    assert pair.satellite.state is State.ERROR


def test_noise_prologue_binds_the_offer() -> None:
    """A meddler who edits the cleartext offer breaks the handshake (spec C22)."""
    pair = noise_pair()
    pair.hub.start()
    hello, offer = pair.hub.data_to_send()
    tampered = json.loads(offer)
    tampered["payload"]["binarize"] = True
    pair.satellite.receive_frame(hello)
    pair.satellite.receive_frame(json.dumps(tampered))
    (msg1,) = pair.satellite.data_to_send()
    with pytest.raises(DecryptionError):
        pair.hub.receive_frame(msg1)


def test_noise_replay_and_reorder_are_fatal() -> None:
    pair = ready_pair("noise")
    pair.satellite.send(UTTERANCE)
    pair.satellite.send(UTTERANCE)
    _first, second = pair.satellite.data_to_send()
    with pytest.raises(DecryptionError):
        pair.hub.receive_frame(second)  # reordered
    assert pair.hub.state is State.ERROR
    pair = ready_pair("noise")
    pair.satellite.send(UTTERANCE)
    (frame,) = pair.satellite.data_to_send()
    pair.hub.receive_frame(frame)
    with pytest.raises(DecryptionError):
        pair.hub.receive_frame(frame)  # replayed


def test_wrong_password_gets_no_envelope() -> None:
    pair = ConnectionPair(
        os.urandom,
        satellite=SatelliteSettings(password="not the password", hello=satellite_hello()),
    )
    pair.hub.start()
    for frame in pair.hub.data_to_send():
        pair.satellite.receive_frame(frame)
    (material,) = pair.satellite.data_to_send()
    with pytest.raises(RemoteProtocolError) as info:
        pair.hub.receive_frame(material)
    assert info.value.close_code == CloseCode.POLICY_VIOLATION
    assert pair.hub.data_to_send() == []  # no envelope went out
    assert pair.hub.state is State.ERROR


def _hub_after_offer(**settings: object) -> Connection:
    hub = Connection(
        Role.HUB, HubSettings(hello=hub_hello(), password=TEST_PASSWORD, **settings), rng=os.urandom
    )
    hub.start()
    hub.data_to_send()
    return hub


def _handshake_frame(payload: dict[str, object]) -> str:
    return encode_json(HiveMessage(MessageType.HANDSHAKE, payload))


def test_rsa_branch_is_refused_even_with_an_envelope() -> None:
    hub = _hub_after_offer()
    envelope = make_envelope(TEST_PASSWORD, b"\x01" * 8)
    frame = _handshake_frame({"pubkey": "-----BEGIN PUBLIC KEY-----", "envelope": envelope})
    with pytest.raises(RemoteProtocolError, match="RSA"):
        hub.receive_frame(frame)


def test_reflected_envelope_is_refused_by_the_satellite() -> None:
    pair = ConnectionPair(os.urandom)
    pair.hub.start()
    for frame in pair.hub.data_to_send():
        pair.satellite.receive_frame(frame)
    (material,) = pair.satellite.data_to_send()
    own = json.loads(material)["payload"]["envelope"]
    reflected = _handshake_frame({"envelope": own, "cipher": "AES-GCM", "encoding": "JSON-HEX"})
    with pytest.raises(RemoteProtocolError):
        pair.satellite.receive_frame(reflected)


@pytest.mark.parametrize("envelope", ["", "zz" * 24, "ab" * 23, "ab" * 41, 42, None])
def test_malformed_envelopes_close(envelope: object) -> None:
    hub = _hub_after_offer()
    with pytest.raises(RemoteProtocolError):
        hub.receive_frame(_handshake_frame({"envelope": envelope}))
    assert hub.data_to_send() == []


def test_negotiation_client_order_wins_and_unknown_names_are_ignored() -> None:
    hub = _hub_after_offer()
    payload = {
        "envelope": make_envelope(TEST_PASSWORD, b"\x02" * 8),
        "encodings": ["JSON-NOPE", "JSON-B32", "JSON-HEX"],
        "ciphers": ["ROT13", "CHACHA20-POLY1305", "AES-GCM"],
    }
    (done,) = hub.receive_frame(_handshake_frame(payload))
    assert (done.cipher, done.encoding) == (Cipher.CHACHA20_POLY1305, TextEncoding.JSON_B32)
    (reply,) = hub.data_to_send()
    assert json.loads(reply)["payload"]["encoding"] == "JSON-B32"


def test_missing_lists_select_protocol_defaults() -> None:
    hub = _hub_after_offer()
    (done,) = hub.receive_frame(
        _handshake_frame({"envelope": make_envelope(TEST_PASSWORD, b"\x03" * 8)})
    )
    assert (done.cipher, done.encoding) == (Cipher.AES_GCM, TextEncoding.JSON_HEX)


def test_nothing_acceptable_closes_without_envelope() -> None:
    hub = _hub_after_offer(allowed_encodings=(TextEncoding.JSON_HEX,))
    payload = {"envelope": make_envelope(TEST_PASSWORD, b"\x04" * 8), "encodings": ["JSON-Z85P"]}
    with pytest.raises(RemoteProtocolError):
        hub.receive_frame(_handshake_frame(payload))
    assert hub.data_to_send() == []


def test_hub_offer_never_lists_z85p_by_default() -> None:
    hub = Connection(Role.HUB, HubSettings(hello=hub_hello(), password="x"), rng=os.urandom)
    hub.start()
    offer = json.loads(hub.data_to_send()[1])["payload"]
    assert "JSON-Z85P" not in offer["encodings"]
    assert offer["password"] is True
    assert offer["crypto_required"] is True
    assert "envelope" not in offer


@pytest.mark.parametrize("kind", ["legacy", "binarized"])
def test_cleartext_bus_after_keying_is_refused(kind: str) -> None:
    pair = ready_pair(kind)
    with pytest.raises(RemoteProtocolError, match="cleartext"):
        pair.hub.receive_frame(encode_json(UTTERANCE))
    assert pair.hub.state is State.ERROR


def test_cleartext_bus_before_keying_is_refused() -> None:
    hub = _hub_after_offer()
    with pytest.raises(RemoteProtocolError):
        hub.receive_frame(encode_json(UTTERANCE))


@pytest.mark.parametrize("kind", ["legacy", "binarized", "noise"])
def test_every_flipped_byte_fails_closed(kind: str) -> None:
    for index in range(0, 120, 7):
        pair = ready_pair(kind)
        pair.satellite.send(UTTERANCE)
        (frame,) = pair.satellite.data_to_send()
        raw = bytearray(frame.encode() if isinstance(frame, str) else frame)
        if index >= len(raw):
            break
        raw[index] ^= 0x01
        tampered = raw.decode("latin-1") if isinstance(frame, str) else bytes(raw)
        with pytest.raises(RemoteProtocolError):
            pair.hub.receive_frame(tampered)
        assert pair.hub.state is State.ERROR
        with pytest.raises(RemoteProtocolError):
            pair.hub.receive_frame(frame)  # nothing more is accepted after a failure


def test_rekey_rotates_the_session_key() -> None:
    pair = ready_pair("legacy")
    pair.satellite.send(UTTERANCE)
    (old_frame,) = pair.satellite.data_to_send()
    pair.satellite.rekey()
    assert pair.satellite.state is State.REKEYING
    transcript = pair.pump()
    assert pair.satellite.state is State.READY
    rekeyed = [e for e in transcript.events_of(Role.HUB) if isinstance(e, HandshakeComplete)]
    assert rekeyed[-1].rekey
    with pytest.raises(DecryptionError):
        pair.hub.receive_frame(old_frame)  # the old key no longer opens frames


def test_messages_sent_while_rekeying_wait_for_the_new_key() -> None:
    """The hub switches keys as it answers; an old-key frame behind the material would die."""
    pair = ready_pair("legacy")
    pair.satellite.rekey()
    pair.satellite.send(UTTERANCE)
    (material,) = pair.satellite.data_to_send()  # the utterance is held, not sealed
    pair.hub.receive_frame(material)
    (response,) = pair.hub.data_to_send()
    pair.satellite.receive_frame(response)
    assert pair.satellite.state is State.READY
    (sealed,) = pair.satellite.data_to_send()
    (event,) = pair.hub.receive_frame(sealed)
    assert isinstance(event, MessageReceived)
    assert event.message == UTTERANCE


def test_preshared_key_client_without_handshake() -> None:
    hub = Connection(
        Role.HUB,
        HubSettings(hello=hub_hello(), crypto_key="f46351c54f61a715"),
        rng=os.urandom,
    )
    hub.start()
    hub.data_to_send()
    key = SessionKey.from_legacy_crypto_key("f46351c54f61a715")
    hello = HiveMessage(MessageType.HELLO, satellite_hello())
    frame = seal_json_frame(
        encode_json(hello).encode(),
        cipher=Cipher.AES_GCM,
        key=key,
        encoding=TextEncoding.JSON_HEX,
        rng=os.urandom,
    )
    (event,) = hub.receive_frame(frame)
    assert isinstance(event, HelloReceived)
    assert hub.state is State.READY
    assert hub.profile is Profile.LEGACY_PRESHARED


def test_misuse_is_a_local_error_and_fails_the_connection() -> None:
    pair = ConnectionPair(os.urandom)
    with pytest.raises(LocalProtocolError):
        pair.hub.send(UTTERANCE)  # not started
    assert pair.hub.state is State.ERROR  # fail closed, like h11
    pair = ConnectionPair(os.urandom)
    pair.hub.start()
    with pytest.raises(LocalProtocolError):
        pair.hub.start()
    with pytest.raises(LocalProtocolError):
        pair.satellite.send(HiveMessage(MessageType.HELLO, {}))
    with pytest.raises(LocalProtocolError):
        Connection(
            Role.HUB, SatelliteSettings(password="x", hello=satellite_hello()), rng=os.urandom
        )
    with pytest.raises(LocalProtocolError):
        SatelliteSettings(password="x", hello={"session": {"session_id": "default"}})


def test_close_stops_everything() -> None:
    pair = ready_pair("legacy")
    event = pair.hub.close(CloseCode.GOING_AWAY)
    assert event.code == CloseCode.GOING_AWAY
    assert pair.hub.state is State.CLOSED
    with pytest.raises(LocalProtocolError):
        pair.hub.send(UTTERANCE)
    with pytest.raises(RemoteProtocolError):
        pair.hub.receive_frame("{}")


def test_oversized_frame_is_1009() -> None:
    hub = _hub_after_offer(max_frame_bytes=2048)
    with pytest.raises(RemoteProtocolError) as info:
        hub.receive_frame("x" * 4096)
    assert info.value.close_code == CloseCode.MESSAGE_TOO_BIG


def test_settings_hide_secrets() -> None:
    text = repr(
        HubSettings(hello=hub_hello(), password="hunter2-secret", crypto_key="f46351c54f61a715")
    )
    assert "hunter2" not in text
    assert "f46351c5" not in text


@given(
    message=hive_messages(max_depth=2).filter(
        lambda m: m.msg_type not in (MessageType.HELLO, MessageType.HANDSHAKE)
    )
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_noise_round_trip_of_any_message(message: HiveMessage) -> None:
    pair = ready_pair("noise")
    pair.hub.send(message)
    (frame,) = pair.hub.data_to_send()
    assert pair.satellite.receive_frame(frame) == [MessageReceived(message, True)]


FRAMES = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300),
    st.builds(lambda o: json.dumps(o), st.dictionaries(st.text(max_size=10), st.text(max_size=10))),
)


@pytest.mark.parametrize("stage", ["offered", "awaiting-hello", "ready-legacy", "ready-noise"])
@given(frames=st.lists(FRAMES, min_size=1, max_size=5))
@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
def test_arbitrary_frames_raise_only_remote_protocol_errors(
    stage: str, frames: list[object]
) -> None:
    if stage == "offered":
        conn = _hub_after_offer()
    elif stage == "awaiting-hello":
        conn = Connection(
            Role.SATELLITE, SatelliteSettings(password="x", hello=satellite_hello()), rng=os.urandom
        )
    else:
        conn = ready_pair("legacy" if stage == "ready-legacy" else "noise").hub
    for frame in frames:
        try:
            conn.receive_frame(frame)  # type: ignore[arg-type]
        except RemoteProtocolError:
            assert conn.state is State.ERROR
            return


def test_noise_message_to_a_ready_legacy_hub_is_a_remote_error() -> None:
    """The hub forgets its offer once ready; a late Noise message still fails closed."""
    pair = ConnectionPair(
        os.urandom,
        HubSettings(
            hello=hub_hello(),
            password=TEST_PASSWORD,
            noise=NoiseIdentity(StaticKeypair.generate(os.urandom)),
        ),
        SatelliteSettings(password=TEST_PASSWORD, hello=satellite_hello()),
    )
    pair.handshake()
    assert pair.hub.state is State.READY
    noise = {
        "pattern": NoisePattern.XXpsk2.value,
        "suite": NoiseSuite.CHACHAPOLY.value,
        "msg": (b"\x00" * 32).hex(),
    }
    with pytest.raises(RemoteProtocolError):
        pair.hub.receive_frame(_handshake_frame({"noise": noise}))
    assert pair.hub.state is State.ERROR
