"""Hypothesis properties: arbitrary peer bytes only ever raise RemoteProtocolError."""

from __future__ import annotations

import os

from hivemind_proto._errors import DecryptionError, RemoteProtocolError
from hivemind_proto._noise import (
    NoiseHandshake,
    NoisePattern,
    NoiseSuite,
    StaticKeypair,
)
from hypothesis import given, settings
from hypothesis import strategies as st

KEYS = [StaticKeypair.generate(os.urandom) for _ in range(2)]
PSK = bytes(range(32))


def _side(pattern, suite, initiator):
    own, peer = (KEYS[0], KEYS[1]) if initiator else (KEYS[1], KEYS[0])
    return NoiseHandshake(
        pattern,
        suite,
        initiator=initiator,
        static=own,
        psk=PSK,
        prologue=b"fuzz",
        rng=os.urandom,
        remote_static=peer.public if pattern is NoisePattern.KKpsk0 else None,
    )


@settings(max_examples=300, deadline=None)
@given(
    pattern=st.sampled_from(list(NoisePattern)),
    suite=st.sampled_from(list(NoiseSuite)),
    step=st.integers(min_value=0, max_value=2),
    data=st.binary(max_size=300),
)
def test_arbitrary_handshake_bytes(pattern, suite, step, data):
    """Feed garbage at some point of an otherwise honest handshake."""
    init, resp = _side(pattern, suite, True), _side(pattern, suite, False)
    for _ in range(step):
        if init.complete:
            break
        sender, receiver = (init, resp) if init.our_turn else (resp, init)
        receiver.read_message(sender.write_message(b"ok"))
    if init.complete:
        return
    receiver = resp if init.our_turn else init
    try:
        receiver.read_message(data)
    except RemoteProtocolError:
        assert not receiver.complete
    else:  # pragma: no cover - forging a tag is not expected to happen
        raise AssertionError("garbage was accepted")


@settings(max_examples=300, deadline=None)
@given(
    suite=st.sampled_from(list(NoiseSuite)),
    messages=st.lists(st.binary(max_size=200), min_size=1, max_size=4),
)
def test_arbitrary_transport_bytes(suite, messages):
    init, resp = _side(NoisePattern.KKpsk0, suite, True), _side(NoisePattern.KKpsk0, suite, False)
    resp.read_message(init.write_message())
    init.read_message(resp.write_message())
    transport = resp.split()
    try:
        transport.decrypt(messages[0])
    except DecryptionError:
        assert transport.failed
    else:  # pragma: no cover
        raise AssertionError("garbage was accepted")


@settings(max_examples=200, deadline=None)
@given(suite=st.sampled_from(list(NoiseSuite)), data=st.data())
def test_mutated_transport_messages(suite, data):
    """Mutations of a genuine message: every variant other than itself is refused."""
    init, resp = _side(NoisePattern.KKpsk0, suite, True), _side(NoisePattern.KKpsk0, suite, False)
    resp.read_message(init.write_message())
    init.read_message(resp.write_message())
    sender, receiver = init.split(), resp.split()
    genuine = sender.encrypt(data.draw(st.binary(max_size=64)))
    mutated = data.draw(
        st.one_of(
            st.binary(max_size=len(genuine) + 8),
            st.integers(0, len(genuine) - 1).map(lambda i: genuine[:i]),
            st.integers(0, len(genuine) * 8 - 1).map(
                lambda b: (
                    genuine[: b // 8]
                    + bytes([genuine[b // 8] ^ (1 << (b % 8))])
                    + genuine[b // 8 + 1 :]
                )
            ),
        )
    )
    if mutated == genuine:
        return
    try:
        receiver.decrypt(mutated)
    except DecryptionError:
        assert receiver.failed
    else:  # pragma: no cover
        raise AssertionError("a mutated message was accepted")
