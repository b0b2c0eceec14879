"""Handshake behaviour: authentication failures, misuse, limits and state."""

from __future__ import annotations

import os

import pytest
from hivemind_proto._errors import (
    CloseCode,
    DecryptionError,
    LocalProtocolError,
    RemoteProtocolError,
)
from hivemind_proto._noise import (
    MAX_MESSAGE_LEN,
    NoiseHandshake,
    NoisePattern,
    NoiseSuite,
    StaticKeypair,
    protocol_name,
)
from hivemind_proto._noise._symmetric import SymmetricState

PATTERNS = list(NoisePattern)
SUITES = list(NoiseSuite)
# A point of order 8 on Curve25519 (a known small-subgroup element).
LOW_ORDER_POINT = bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")


def make_pair(pattern, suite=NoiseSuite.CHACHAPOLY, *, init_over=None, resp_over=None):
    """Two sides that agree on everything unless a field is overridden."""
    i_static = StaticKeypair.generate(os.urandom)
    r_static = StaticKeypair.generate(os.urandom)
    kk = pattern is NoisePattern.KKpsk0
    base = {"psk": b"k" * 32, "prologue": b"prologue", "rng": os.urandom}
    init_args = {
        **base,
        "static": i_static,
        "remote_static": r_static.public if kk else None,
        **(init_over or {}),
    }
    resp_args = {
        **base,
        "static": r_static,
        "remote_static": i_static.public if kk else None,
        **(resp_over or {}),
    }
    init = NoiseHandshake(pattern, suite, initiator=True, **init_args)
    resp = NoiseHandshake(pattern, suite, initiator=False, **resp_args)
    return init, resp


def run(init, resp, payload=b""):
    """Complete the handshake; return every message sent."""
    wires = []
    while not (init.complete and resp.complete):
        sender, receiver = (init, resp) if init.our_turn else (resp, init)
        wire = sender.write_message(payload)
        wires.append(wire)
        receiver.read_message(wire)
    return wires


def fail_on_first_read(init, resp):
    """Run until a read raises; return (the reader, the exception)."""
    while True:
        sender, receiver = (init, resp) if init.our_turn else (resp, init)
        wire = sender.write_message(b"payload")
        try:
            receiver.read_message(wire)
        except RemoteProtocolError as exc:
            return receiver, exc


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("suite", SUITES)
def test_complete_handshake_state(pattern, suite):
    init, resp = make_pair(pattern, suite)
    assert not init.complete
    with pytest.raises(LocalProtocolError):
        _ = init.handshake_hash
    run(init, resp, b"x")
    assert init.complete
    assert resp.complete
    assert not init.our_turn
    assert not resp.our_turn
    assert init.handshake_hash == resp.handshake_hash
    assert len(init.handshake_hash) == 32
    assert init.remote_static == resp._s.public
    assert resp.remote_static == init._s.public
    t_init, t_resp = init.split(), resp.split()
    assert t_init.handshake_hash == t_resp.handshake_hash == init.handshake_hash
    assert t_resp.decrypt(t_init.encrypt(b"ping")) == b"ping"
    assert t_init.decrypt(t_resp.encrypt(b"pong")) == b"pong"


@pytest.mark.parametrize("pattern", PATTERNS)
def test_wrong_psk_fails_on_the_reading_side(pattern):
    init, resp = make_pair(pattern, resp_over={"psk": b"K" * 32})
    reader, exc = fail_on_first_read(init, resp)
    assert type(exc) is DecryptionError
    assert str(exc) == "decryption failed"
    assert exc.close_code == CloseCode.POLICY_VIOLATION
    # KKpsk0 mixes the PSK before the first payload: the responder notices at
    # once. XXpsk2 mixes it at the end of message 2: the initiator notices.
    assert reader is (resp if pattern is NoisePattern.KKpsk0 else init)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_tampered_prologue_fails(pattern):
    init, resp = make_pair(pattern, init_over={"prologue": b"prologuE"})
    _, exc = fail_on_first_read(init, resp)
    assert type(exc) is DecryptionError


def test_kk_wrong_remote_static_fails():
    stranger = StaticKeypair.generate(os.urandom).public
    init, resp = make_pair(NoisePattern.KKpsk0, init_over={"remote_static": stranger})
    reader, exc = fail_on_first_read(init, resp)
    assert type(exc) is DecryptionError
    assert reader is resp


def test_kk_responder_with_wrong_initiator_key_fails():
    stranger = StaticKeypair.generate(os.urandom).public
    init, resp = make_pair(NoisePattern.KKpsk0, resp_over={"remote_static": stranger})
    _, exc = fail_on_first_read(init, resp)
    assert type(exc) is DecryptionError


@pytest.mark.parametrize("side", ["init", "resp"])
def test_xx_pinned_key_contradiction_fails(side):
    stranger = StaticKeypair.generate(os.urandom).public
    over = {"remote_static": stranger}
    init, resp = make_pair(
        NoisePattern.XXpsk2,
        init_over=over if side == "init" else None,
        resp_over=over if side == "resp" else None,
    )
    reader, exc = fail_on_first_read(init, resp)
    assert type(exc) is DecryptionError
    assert reader is (init if side == "init" else resp)
    assert reader.remote_static is None


def test_xx_pinned_key_match_succeeds():
    init, resp = make_pair(NoisePattern.XXpsk2)
    expected = resp._s.public
    init2 = NoiseHandshake(
        NoisePattern.XXpsk2,
        NoiseSuite.CHACHAPOLY,
        initiator=True,
        static=init._s,
        psk=b"k" * 32,
        prologue=b"prologue",
        rng=os.urandom,
        remote_static=expected,
    )
    assert init2.remote_static is None  # not proven yet
    run(init2, resp)
    assert init2.remote_static == expected


def test_xx_remote_static_is_learnt_in_order():
    init, resp = make_pair(NoisePattern.XXpsk2)
    resp.read_message(init.write_message())
    assert init.remote_static is None
    assert resp.remote_static is None
    init.read_message(resp.write_message())
    assert init.remote_static == resp._s.public
    assert resp.remote_static is None
    resp.read_message(init.write_message())
    assert resp.remote_static == init._s.public


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("suite", SUITES)
def test_every_flipped_bit_position_of_every_message_is_rejected(pattern, suite):
    """Flip one bit in each byte of each handshake message in turn."""
    reference_init, reference_resp = make_pair(pattern, suite)
    lengths = [len(w) for w in run(reference_init, reference_resp, b"abc")]
    for message_index, length in enumerate(lengths):
        for offset in range(length):
            init, resp = make_pair(pattern, suite)
            for _ in range(message_index):
                sender, receiver = (init, resp) if init.our_turn else (resp, init)
                receiver.read_message(sender.write_message(b"abc"))
            sender, receiver = (init, resp) if init.our_turn else (resp, init)
            wire = bytearray(sender.write_message(b"abc"))
            wire[offset] ^= 1 << (offset % 8)
            with pytest.raises(DecryptionError):
                receiver.read_message(bytes(wire))


@pytest.mark.parametrize("pattern", PATTERNS)
def test_truncated_and_extended_messages_are_rejected(pattern):
    for cut in (0, 1, 31, 32, 33, 47, -1):
        init, resp = make_pair(pattern)
        wire = init.write_message(b"payload")
        with pytest.raises(RemoteProtocolError):
            resp.read_message(wire[:cut])
    init, resp = make_pair(pattern)
    wire = init.write_message(b"payload")
    with pytest.raises(DecryptionError):
        resp.read_message(wire + b"\x00")
    # The control: the same untouched message is accepted.
    init, resp = make_pair(pattern)
    assert resp.read_message(init.write_message(b"payload")) == b"payload"


def test_low_order_ephemeral_with_valid_tag_is_rejected_on_read():
    """The first XXpsk2 message is keyed by public values, so anyone can forge one.

    A forged message with a low-order ephemeral key must fail when read, not
    later when the responder computes DH(e, re) for its reply.
    """
    name = protocol_name(NoisePattern.XXpsk2, NoiseSuite.CHACHAPOLY).encode()
    forger = SymmetricState(name, NoiseSuite.CHACHAPOLY)
    forger.mix_hash(b"prologue")
    forger.mix_hash(LOW_ORDER_POINT)
    forger.mix_key(LOW_ORDER_POINT)
    forged = LOW_ORDER_POINT + forger.encrypt_and_hash(b"hello")
    # Control: the same forgery with an ordinary key is accepted.
    ordinary = bytes(StaticKeypair.generate(os.urandom).public)
    control = SymmetricState(name, NoiseSuite.CHACHAPOLY)
    control.mix_hash(b"prologue")
    control.mix_hash(ordinary)
    control.mix_key(ordinary)
    _, resp = make_pair(NoisePattern.XXpsk2)
    assert resp.read_message(ordinary + control.encrypt_and_hash(b"hello")) == b"hello"
    _, resp = make_pair(NoisePattern.XXpsk2)
    with pytest.raises(DecryptionError):
        resp.read_message(forged)
    with pytest.raises(LocalProtocolError):
        resp.write_message()


def test_low_order_ephemeral_is_rejected():
    _, resp = make_pair(NoisePattern.XXpsk2)
    with pytest.raises(DecryptionError):
        resp.read_message(LOW_ORDER_POINT + bytes(16))
    assert resp.remote_static is None
    with pytest.raises(LocalProtocolError):
        resp.write_message()


def test_read_failure_is_fatal():
    init, resp = make_pair(NoisePattern.XXpsk2, resp_over={"psk": b"K" * 32})
    resp.read_message(init.write_message())
    with pytest.raises(DecryptionError):
        init.read_message(resp.write_message())
    assert not init.complete
    for call in (init.write_message, lambda: init.read_message(b"x" * 64), init.split):
        with pytest.raises(LocalProtocolError):
            call()
    with pytest.raises(LocalProtocolError):
        _ = init.handshake_hash


@pytest.mark.parametrize("pattern", PATTERNS)
def test_turn_order_is_enforced(pattern):
    init, resp = make_pair(pattern)
    assert init.our_turn
    assert not resp.our_turn
    with pytest.raises(LocalProtocolError):
        resp.write_message()
    with pytest.raises(LocalProtocolError):
        init.read_message(b"\x00" * 64)
    # Misuse changes nothing: the handshake still completes.
    run(init, resp)
    with pytest.raises(LocalProtocolError):
        init.write_message()
    with pytest.raises(LocalProtocolError):
        resp.read_message(b"\x00" * 64)


def test_split_only_once_and_only_when_complete():
    init, resp = make_pair(NoisePattern.KKpsk0)
    with pytest.raises(LocalProtocolError):
        init.split()
    run(init, resp)
    init.split()
    with pytest.raises(LocalProtocolError):
        init.split()
    assert init.complete
    assert len(init.handshake_hash) == 32


@pytest.mark.parametrize("pattern", PATTERNS)
def test_payload_size_limit(pattern):
    init, resp = make_pair(pattern)
    overhead = {NoisePattern.XXpsk2: 32 + 16, NoisePattern.KKpsk0: 32 + 16}[pattern]
    with pytest.raises(LocalProtocolError):
        init.write_message(bytes(MAX_MESSAGE_LEN - overhead + 1))
    wire = init.write_message(bytes(MAX_MESSAGE_LEN - overhead))
    assert len(wire) == MAX_MESSAGE_LEN
    assert resp.read_message(wire) == bytes(MAX_MESSAGE_LEN - overhead)


def test_oversized_incoming_message_is_rejected():
    _, resp = make_pair(NoisePattern.XXpsk2)
    with pytest.raises(RemoteProtocolError) as info:
        resp.read_message(bytes(MAX_MESSAGE_LEN + 1))
    assert info.value.close_code == CloseCode.MESSAGE_TOO_BIG


def _args(**over):
    args = {
        "initiator": True,
        "static": StaticKeypair.generate(os.urandom),
        "psk": bytes(32),
        "prologue": b"",
        "rng": os.urandom,
    }
    args.update(over)
    return args


@pytest.mark.parametrize(
    "over",
    [
        {"psk": bytes(31)},
        {"psk": bytes(33)},
        {"psk": "x" * 32},
        {"static": b"\x01" * 32},
        {"prologue": "text"},
        {"remote_static": b"\x09" + bytes(31)},
    ],
    ids=["psk-31", "psk-33", "psk-str", "static-bytes", "prologue-str", "remote-bytes"],
)
def test_invalid_arguments(over):
    with pytest.raises(LocalProtocolError):
        NoiseHandshake(NoisePattern.XXpsk2, NoiseSuite.CHACHAPOLY, **_args(**over))


@pytest.mark.parametrize("initiator", [True, False])
def test_kk_without_remote_static_is_misuse(initiator):
    with pytest.raises(LocalProtocolError):
        NoiseHandshake(NoisePattern.KKpsk0, NoiseSuite.AESGCM, **_args(initiator=initiator))


def test_unknown_pattern_or_suite():
    with pytest.raises(LocalProtocolError):
        NoiseHandshake("IKpsk2", NoiseSuite.AESGCM, **_args())
    with pytest.raises(LocalProtocolError):
        NoiseHandshake(NoisePattern.XXpsk2, "25519_ChaChaPoly_BLAKE2s", **_args())
    accepted = NoiseHandshake("XXpsk2", "25519_AESGCM_SHA256", **_args())
    assert accepted.pattern is NoisePattern.XXpsk2
    assert accepted.suite is NoiseSuite.AESGCM


@pytest.mark.parametrize("bad", [b"", b"short", None])
def test_misbehaving_rng_is_local_error(bad):
    hs = NoiseHandshake(NoisePattern.XXpsk2, NoiseSuite.CHACHAPOLY, **_args(rng=lambda n: bad))
    with pytest.raises(LocalProtocolError):
        hs.write_message()


def test_suites_do_not_interoperate():
    init, _ = make_pair(NoisePattern.XXpsk2, NoiseSuite.CHACHAPOLY)
    _, resp = make_pair(NoisePattern.XXpsk2, NoiseSuite.AESGCM)
    with pytest.raises(DecryptionError):
        resp.read_message(init.write_message(b"x"))


def test_repr_shows_no_secrets():
    init, _ = make_pair(NoisePattern.KKpsk0)
    text = repr(init)
    assert "KKpsk0" in text
    assert init._s.private_bytes().hex() not in text
    assert (b"k" * 32).hex() not in text
