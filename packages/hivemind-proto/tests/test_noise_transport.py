"""Transport phase: counters make replay, reorder, truncation and tampering fatal."""

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
    MAX_PLAINTEXT_LEN,
    NoiseHandshake,
    NoisePattern,
    NoiseSuite,
    StaticKeypair,
)

SUITES = list(NoiseSuite)


def transports(suite=NoiseSuite.CHACHAPOLY, pattern=NoisePattern.XXpsk2):
    a, b = StaticKeypair.generate(os.urandom), StaticKeypair.generate(os.urandom)
    kk = pattern is NoisePattern.KKpsk0
    common = {"psk": os.urandom(32), "prologue": b"p", "rng": os.urandom}
    init = NoiseHandshake(
        pattern, suite, initiator=True, static=a, remote_static=b.public if kk else None, **common
    )
    resp = NoiseHandshake(
        pattern, suite, initiator=False, static=b, remote_static=a.public if kk else None, **common
    )
    while not init.complete:
        sender, receiver = (init, resp) if init.our_turn else (resp, init)
        receiver.read_message(sender.write_message())
    return init.split(), resp.split()


def assert_dead(transport):
    assert transport.failed
    with pytest.raises(LocalProtocolError):
        transport.decrypt(b"\x00" * 32)
    with pytest.raises(LocalProtocolError):
        transport.encrypt(b"more")
    with pytest.raises(LocalProtocolError):
        transport.rekey_send()
    with pytest.raises(LocalProtocolError):
        transport.rekey_receive()


@pytest.mark.parametrize("suite", SUITES)
def test_round_trip_both_directions(suite):
    a, b = transports(suite)
    for i in range(5):
        assert b.decrypt(a.encrypt(b"a%d" % i)) == b"a%d" % i
        assert a.decrypt(b.encrypt(b"b%d" % i)) == b"b%d" % i
    assert a.decrypt(b.encrypt(b"")) == b""
    assert len(a.encrypt(b"12345")) == 5 + 16


@pytest.mark.parametrize("suite", SUITES)
def test_directions_use_different_keys(suite):
    a, _ = transports(suite)
    wire = a.encrypt(b"reflected")
    # Sending a message back to its author must fail: keys differ per direction.
    with pytest.raises(DecryptionError):
        a.decrypt(wire)


@pytest.mark.parametrize("suite", SUITES)
def test_replay_is_fatal(suite):
    a, b = transports(suite)
    wire = a.encrypt(b"once")
    assert b.decrypt(wire) == b"once"
    with pytest.raises(DecryptionError):
        b.decrypt(wire)
    assert_dead(b)


@pytest.mark.parametrize("suite", SUITES)
def test_reorder_is_fatal(suite):
    a, b = transports(suite)
    first, second = a.encrypt(b"first"), a.encrypt(b"second")
    with pytest.raises(DecryptionError):
        b.decrypt(second)
    # Even the message that would now be next is refused: the failure is fatal.
    with pytest.raises(LocalProtocolError):
        b.decrypt(first)
    assert_dead(b)


@pytest.mark.parametrize("suite", SUITES)
def test_drop_is_fatal(suite):
    a, b = transports(suite)
    a.encrypt(b"lost")
    with pytest.raises(DecryptionError):
        b.decrypt(a.encrypt(b"next"))
    assert_dead(b)


@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize("cut", [0, 1, 15, 16, -1])
def test_truncation_is_fatal(suite, cut):
    a, b = transports(suite)
    wire = a.encrypt(b"truncate me")
    with pytest.raises(DecryptionError):
        b.decrypt(wire[:cut])
    assert_dead(b)


@pytest.mark.parametrize("suite", SUITES)
def test_every_bit_flip_is_fatal(suite):
    plaintext = b"\x02" + b"flip every bit"
    for position in range((len(plaintext) + 16) * 8):
        a, b = transports(suite)
        wire = bytearray(a.encrypt(plaintext))
        wire[position // 8] ^= 1 << (position % 8)
        with pytest.raises(DecryptionError):
            b.decrypt(bytes(wire))
        assert b.failed
    # Control: untouched, it decrypts.
    a, b = transports(suite)
    assert b.decrypt(a.encrypt(plaintext)) == plaintext


def test_decryption_error_carries_no_detail():
    messages = []
    for bad in (b"", b"x" * 40):
        _, fresh = transports()
        with pytest.raises(DecryptionError) as info:
            fresh.decrypt(bad)
        messages.append(str(info.value))
        assert info.value.__cause__ is None
        assert info.value.__context__ is None or info.value.__suppress_context__
    assert set(messages) == {"decryption failed"}


def test_plaintext_limit():
    a, b = transports()
    with pytest.raises(LocalProtocolError):
        a.encrypt(bytes(MAX_PLAINTEXT_LEN + 1))
    # Refusing an oversized plaintext consumes nothing: the channel still works.
    assert not a.failed
    wire = a.encrypt(bytes(MAX_PLAINTEXT_LEN))
    assert len(wire) == MAX_MESSAGE_LEN
    assert b.decrypt(wire) == bytes(MAX_PLAINTEXT_LEN)


def test_oversized_message_is_fatal():
    _, b = transports()
    with pytest.raises(RemoteProtocolError) as info:
        b.decrypt(bytes(MAX_MESSAGE_LEN + 1))
    assert info.value.close_code == CloseCode.MESSAGE_TOO_BIG
    assert_dead(b)


@pytest.mark.parametrize("suite", SUITES)
def test_nonce_exhaustion(suite):
    a, b = transports(suite)
    a._send._set_nonce(2**64 - 2)
    b._recv._set_nonce(2**64 - 2)
    # The last usable counter value still works and decrypts on the other side.
    assert b.decrypt(a.encrypt(b"last")) == b"last"
    with pytest.raises(LocalProtocolError):
        a.encrypt(b"one too many")
    assert a.failed
    # A genuine tag under the reserved counter value is still refused.
    forged = a._send._aead.encrypt(2**64 - 1, b"", b"reserved nonce")
    with pytest.raises(DecryptionError):
        b.decrypt(forged)


def test_bytes_like_inputs_are_accepted():
    a, b = transports()
    wire = a.encrypt(bytearray(b"mutable"))
    assert b.decrypt(memoryview(wire)) == b"mutable"


@pytest.mark.parametrize("suite", SUITES)
def test_rekey_changes_keys_in_step(suite):
    a, b = transports(suite)
    a.rekey_send()
    wire = a.encrypt(b"new key")
    b.rekey_receive()
    assert b.decrypt(wire) == b"new key"
    b.rekey_send()
    with pytest.raises(DecryptionError):
        a.decrypt(b.encrypt(b"peer did not rekey its receiver"))


def test_repr_shows_counters_only():
    a, b = transports()
    b.decrypt(a.encrypt(b"x"))
    assert repr(a) == "NoiseTransport(sent=1, received=0, failed=False)"
    assert repr(b) == "NoiseTransport(sent=0, received=1, failed=False)"
