"""Cross-checks against an independent Noise implementation (``noiseprotocol``).

``noiseprotocol`` 0.3.1 is a separate pure-Python framework on top of
``cryptography``; it supports the psk modifiers, so it can run both of our
patterns in both suites. It works with cryptography 50 as is (no shim needed).
"""

from __future__ import annotations

import os
import warnings

import pytest
from hivemind_proto._noise import (
    NoiseHandshake,
    NoisePattern,
    NoiseSuite,
    StaticKeypair,
    protocol_name,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from noise.connection import Keypair, NoiseConnection

PATTERNS = list(NoisePattern)
SUITES = list(NoiseSuite)


def _theirs(pattern, suite, *, initiator, static, psk, prologue, remote=None, ephemeral=None):
    conn = NoiseConnection.from_name(protocol_name(pattern, suite).encode())
    if initiator:
        conn.set_as_initiator()
    else:
        conn.set_as_responder()
    conn.set_psks(psk)
    conn.set_prologue(prologue)
    conn.set_keypair_from_private_bytes(Keypair.STATIC, static.private_bytes())
    if remote is not None:
        conn.set_keypair_from_public_bytes(Keypair.REMOTE_STATIC, bytes(remote))
    if ephemeral is None:
        conn.start_handshake()
        return conn
    conn.set_keypair_from_private_bytes(Keypair.EPHEMERAL, ephemeral)
    # noiseprotocol warns that a preset ephemeral key is for tests only; it is.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "One of ephemeral keypairs", UserWarning)
        conn.start_handshake()
    return conn


def _ours(pattern, suite, *, initiator, static, psk, prologue, remote=None, ephemeral=None):
    rng = os.urandom if ephemeral is None else (lambda n: ephemeral)
    kk = pattern is NoisePattern.KKpsk0
    return NoiseHandshake(
        pattern,
        suite,
        initiator=initiator,
        static=static,
        psk=psk,
        prologue=prologue,
        rng=rng,
        remote_static=remote if kk else None,
    )


def _run(pattern, suite, ours_initiator, payloads, ephemerals=(None, None)):
    """Handshake ours against theirs; return (ours, theirs, wire messages)."""
    ours_static = StaticKeypair.generate(os.urandom)
    their_static = StaticKeypair.generate(os.urandom)
    return _run_with(
        pattern,
        suite,
        ours_initiator,
        payloads,
        ours_static,
        their_static,
        os.urandom(32),
        ephemerals,
    )


def _run_with(pattern, suite, ours_initiator, payloads, ours_static, their_static, psk, ephemerals):
    kk = pattern is NoisePattern.KKpsk0
    init_eph, resp_eph = ephemerals
    ours = _ours(
        pattern,
        suite,
        initiator=ours_initiator,
        static=ours_static,
        psk=psk,
        prologue=b"hello|handshake|name",
        remote=their_static.public,
        ephemeral=init_eph if ours_initiator else resp_eph,
    )
    theirs = _theirs(
        pattern,
        suite,
        initiator=not ours_initiator,
        static=their_static,
        psk=psk,
        prologue=b"hello|handshake|name",
        remote=ours_static.public if kk else None,
        ephemeral=resp_eph if ours_initiator else init_eph,
    )
    wires = []
    for payload in payloads:
        if ours.complete:
            break
        if ours.our_turn:
            wire = ours.write_message(payload)
            assert theirs.read_message(wire) == payload
        else:
            wire = theirs.write_message(payload)
            assert ours.read_message(wire) == payload
        wires.append(bytes(wire))
    assert ours.complete
    assert theirs.handshake_finished
    assert ours.remote_static == their_static.public
    assert ours.handshake_hash == theirs.get_handshake_hash()
    return ours, theirs, wires


def _exchange(transport, theirs, messages):
    for index, message in enumerate(messages):
        assert theirs.decrypt(transport.encrypt(message)) == message
        reply = message[::-1] + b"%d" % index
        assert transport.decrypt(theirs.encrypt(reply)) == reply


FIXED_PAYLOADS = [b'{"binarize":true,"encodings":["JSON-B64"]}', b'{"encoding":"JSON-B64"}', b""]


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize("ours_initiator", [True, False], ids=["ours-init", "ours-resp"])
def test_interop_fixed_payloads(pattern, suite, ours_initiator):
    ours, theirs, _ = _run(pattern, suite, ours_initiator, FIXED_PAYLOADS)
    transport = ours.split()
    # Enough messages that the counters pass 255: a wrong nonce byte order fails.
    _exchange(transport, theirs, [b"\x02" + bytes([i % 256]) * i for i in range(300)])


@settings(max_examples=40, deadline=None)
@given(
    pattern=st.sampled_from(PATTERNS),
    suite=st.sampled_from(SUITES),
    ours_initiator=st.booleans(),
    payloads=st.lists(st.binary(max_size=2048), min_size=3, max_size=3),
    messages=st.lists(st.binary(max_size=4096), max_size=8),
)
def test_interop_random_payloads(pattern, suite, ours_initiator, payloads, messages):
    ours, theirs, _ = _run(pattern, suite, ours_initiator, payloads)
    _exchange(ours.split(), theirs, messages)


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("suite", SUITES)
def test_byte_identical_to_noiseprotocol_with_fixed_ephemerals(pattern, suite):
    """Same keys and ephemerals: our bytes equal theirs message for message."""
    statics = StaticKeypair.generate(os.urandom), StaticKeypair.generate(os.urandom)
    ephemerals = os.urandom(32), os.urandom(32)
    psk = os.urandom(32)
    payloads = [b"one", b"two", b"three"]
    # Run A: we are the initiator; run B: they are, with the same key material.
    _, _, wires_a = _run_with(pattern, suite, True, payloads, *statics, psk, ephemerals)
    _, _, wires_b = _run_with(
        pattern, suite, False, payloads, statics[1], statics[0], psk, ephemerals
    )
    assert wires_a == wires_b
    assert len(wires_a) == (3 if pattern is NoisePattern.XXpsk2 else 2)


@pytest.mark.parametrize("suite", SUITES)
def test_max_size_transport_message_interop(suite):
    ours, theirs, _ = _run(NoisePattern.XXpsk2, suite, True, FIXED_PAYLOADS)
    transport = ours.split()
    big = os.urandom(65535 - 16)
    wire = transport.encrypt(big)
    assert len(wire) == 65535
    assert theirs.decrypt(wire) == big
    assert transport.decrypt(theirs.encrypt(big)) == big


@pytest.mark.parametrize("suite", SUITES)
def test_rekey_interop(suite):
    ours, theirs, _ = _run(NoisePattern.KKpsk0, suite, False, FIXED_PAYLOADS)
    transport = ours.split()
    _exchange(transport, theirs, [b"before"])
    transport.rekey_send()
    theirs.rekey_inbound_cipher()
    theirs.rekey_outbound_cipher()
    transport.rekey_receive()
    _exchange(transport, theirs, [b"after", b"again"])
