"""X25519 key classes."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hivemind_proto._errors import LocalProtocolError
from hivemind_proto._noise import NoisePublicKey, StaticKeypair

# Curve25519 points of small order (0, 1, an order-8 point, p-1, p, p+1), in
# little-endian u-coordinates, plus one non-canonical encoding with the top bit set.
_P = 2**255 - 19
LOW_ORDER = [
    (0).to_bytes(32, "little"),
    (1).to_bytes(32, "little"),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    (_P - 1).to_bytes(32, "little"),
    _P.to_bytes(32, "little"),
    (_P + 1).to_bytes(32, "little"),
    (1 + 2**255).to_bytes(32, "little"),
]


def _reference_public(private: bytes) -> bytes:
    key = X25519PrivateKey.from_private_bytes(private)
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def test_public_key_matches_an_independent_x25519():
    for _ in range(10):
        private = os.urandom(32)
        assert bytes(StaticKeypair.from_private_bytes(private).public) == _reference_public(private)


def test_generate_uses_the_given_rng_only():
    calls = []

    def rng(n):
        calls.append(n)
        return b"\x07" * n

    first = StaticKeypair.generate(rng)
    assert calls == [32]
    assert first.private_bytes() == b"\x07" * 32
    assert StaticKeypair.generate(rng).public == first.public


def test_private_bytes_round_trip():
    pair = StaticKeypair.generate(os.urandom)
    again = StaticKeypair.from_private_bytes(pair.private_bytes())
    assert again.public == pair.public


@pytest.mark.parametrize("bad", [b"", bytes(31), bytes(33), "x" * 32])
def test_private_key_length(bad):
    with pytest.raises(LocalProtocolError):
        StaticKeypair.from_private_bytes(bad)


@pytest.mark.parametrize("bad", [lambda n: b"", lambda n: bytes(n + 1), lambda n: "a" * n])
def test_generate_checks_the_rng(bad):
    with pytest.raises(LocalProtocolError):
        StaticKeypair.generate(bad)


def test_repr_never_shows_the_private_key():
    pair = StaticKeypair.generate(os.urandom)
    text = repr(pair) + str(pair)
    assert pair.private_bytes().hex() not in text
    assert pair.public.hex() in text


def test_public_key_value_semantics():
    pair = StaticKeypair.generate(os.urandom)
    key = pair.public
    copy = NoisePublicKey.from_hex(key.hex())
    assert copy == key
    assert hash(copy) == hash(key)
    assert len({copy, key}) == 1
    assert copy != StaticKeypair.generate(os.urandom).public
    assert copy != bytes(key)
    assert NoisePublicKey.from_hex(key.hex().upper()) == key
    assert repr(key) == f"NoisePublicKey({key.hex()!r})"
    assert len(key.hex()) == 64


@pytest.mark.parametrize("text", ["", "zz" * 32, "00" * 31, "00" * 33, "0" * 63])
def test_from_hex_rejects_bad_text(text):
    with pytest.raises(LocalProtocolError):
        NoisePublicKey.from_hex(text)


@pytest.mark.parametrize("point", LOW_ORDER, ids=range(len(LOW_ORDER)))
def test_low_order_points_are_not_keys(point):
    with pytest.raises(LocalProtocolError):
        NoisePublicKey(point)


def test_an_ordinary_point_is_a_key():
    assert bytes(NoisePublicKey((9).to_bytes(32, "little"))) == (9).to_bytes(32, "little")
