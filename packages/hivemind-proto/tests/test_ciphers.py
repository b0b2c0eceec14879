"""Session keys and the legacy AEAD ciphers."""

from __future__ import annotations

import copy
import os
import pickle

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from hivemind_proto._ciphers import (
    TAG_SIZE,
    SessionKey,
    aead_open,
    aead_seal,
    nonce_size,
)
from hivemind_proto._errors import DecryptionError, LocalProtocolError
from hivemind_proto._types import Cipher
from hypothesis import given
from hypothesis import strategies as st

K = bytes.fromhex("229004201153d4177eba20889a5571695b229252ca1f5fc58d292ee322541154")
P = (
    b'{"msg_type": "bus", "payload": {"type": "recognizer_loop:utterance", '
    b'"data": {"utterances": ["hello"]}, "context": {}}}'
)
ALL = list(Cipher)


def _nonce(cipher: Cipher, fill: int = 0) -> bytes:
    return bytes([fill]) * nonce_size(cipher)


# --------------------------------------------------------------------------- SessionKey


@pytest.mark.parametrize("size", [16, 24, 32])
def test_session_key_accepts_aes_sizes(size):
    key = SessionKey(bytes(range(size)))
    assert key.raw == bytes(range(size))
    assert key.supports(Cipher.AES_GCM)
    assert key.supports(Cipher.CHACHA20_POLY1305) is (size == 32)


@pytest.mark.parametrize("raw", [b"", b"x" * 15, b"x" * 17, b"x" * 31, b"x" * 33, b"x" * 64])
def test_session_key_refuses_other_lengths(raw):
    with pytest.raises(LocalProtocolError):
        SessionKey(raw)


@pytest.mark.parametrize("raw", ["a" * 32, None, 32, list(range(32))])
def test_session_key_refuses_non_bytes(raw):
    with pytest.raises(LocalProtocolError):
        SessionKey(raw)


def test_session_key_repr_hides_the_bytes():
    key = SessionKey(K)
    for text in (repr(key), str(key), f"{key}", f"{key!r}"):
        assert K.hex() not in text
        assert "2290" not in text
        assert "32 bytes" in text


def test_session_key_equality():
    assert SessionKey(K) == SessionKey(bytes(K))
    assert SessionKey(K) != SessionKey(K[::-1])
    assert SessionKey(K[:16]) != SessionKey(K)
    assert SessionKey(K) != K  # never equal to raw bytes


def test_session_key_is_not_hashable_or_picklable():
    with pytest.raises(TypeError):
        hash(SessionKey(K))
    with pytest.raises(TypeError):
        pickle.dumps(SessionKey(K))
    with pytest.raises(TypeError):
        copy.copy(SessionKey(K))


def test_session_key_copies_its_input():
    raw = bytearray(K)
    key = SessionKey(raw)
    raw[0] ^= 1
    assert key.raw == K


def test_equality_uses_a_constant_time_comparison(monkeypatch):
    import hivemind_proto._ciphers as module

    calls = []

    def spy(a, b):
        calls.append((len(a), len(b)))
        return a == b

    monkeypatch.setattr(module.hmac, "compare_digest", spy)
    assert SessionKey(K) == SessionKey(K)
    assert calls == [(32, 32)]


def test_legacy_crypto_key_vector():
    key = SessionKey.from_legacy_crypto_key("f46351c54f61a715")
    assert key.raw.hex() == "66343633353163353466363161373135"
    assert key.supports(Cipher.AES_GCM)
    assert not key.supports(Cipher.CHACHA20_POLY1305)
    ct, tag = aead_seal(Cipher.AES_GCM, key, bytes(range(16)), b'{"msg_type": "bus"}')
    assert ct.hex() == "0980986ca1ca4dae8fb24a9c5096b45387b38f"
    assert tag.hex() == "4e84f63d0b205f02b184a936eaf7e5c9"


@pytest.mark.parametrize(
    "text", ["f46351c54f61a71", "f46351c54f61a7155", "", "é46351c54f61a715", b"f46351c54f61a715"]
)
def test_legacy_crypto_key_must_be_16_ascii_characters(text):
    with pytest.raises(LocalProtocolError):
        SessionKey.from_legacy_crypto_key(text)


# --------------------------------------------------------------------------- AEAD vectors


def test_nonce_sizes():
    assert nonce_size(Cipher.AES_GCM) == 16
    assert nonce_size(Cipher.CHACHA20_POLY1305) == 12
    assert TAG_SIZE == 16


def test_aes_gcm_vector():
    ct, tag = aead_seal(Cipher.AES_GCM, SessionKey(K), bytes(range(16)), P)
    assert tag.hex() == "e1d0d6d9dc3347a74ab11df86a1de9ea"
    assert ct.hex().startswith("4369959c3f39099deeb140cfb132e609")
    assert len(ct) == len(P) == 119
    assert aead_open(Cipher.AES_GCM, SessionKey(K), bytes(range(16)), ct, tag) == P


def test_chacha_vector():
    ct, tag = aead_seal(Cipher.CHACHA20_POLY1305, SessionKey(K), bytes(range(12)), P)
    assert tag.hex() == "d68c92cc35d78827cac775e42b3a73da"
    assert ct.hex().startswith("89f8e0d82d7efc8d28fbd86aadf05269")
    assert aead_open(Cipher.CHACHA20_POLY1305, SessionKey(K), bytes(range(12)), ct, tag) == P


def test_upstream_js_vector():
    key = SessionKey(
        bytes.fromhex("b0e2f9ac3479409d6e6c03adf0ec8b5b398faed914c4c520acc6986c5246bc7e")
    )
    nonce = bytes.fromhex("00112233445566778899aabbccddeeff")
    ct, tag = aead_seal(Cipher.AES_GCM, key, nonce, b'{"msg_type":"bus","payload":"test"}')
    assert ct.hex() == "b047e2a2679dfed698b2fdd8c80a36eed427d7bee172e22fd96dbc3e0ee211126ea32d"
    assert tag.hex() == "7cbdd1106901fef79e50e70e8159d275"


# --------------------------------------------------------------------------- properties


@pytest.mark.parametrize("cipher", ALL)
@given(plaintext=st.binary(max_size=512), raw=st.binary(min_size=32, max_size=32), data=st.data())
def test_round_trip_and_agreement_with_cryptography(cipher, plaintext, raw, data):
    nonce = data.draw(st.binary(min_size=nonce_size(cipher), max_size=nonce_size(cipher)))
    key = SessionKey(raw)
    ct, tag = aead_seal(cipher, key, nonce, plaintext)
    assert len(ct) == len(plaintext)
    assert len(tag) == TAG_SIZE
    reference = AESGCM(raw) if cipher is Cipher.AES_GCM else ChaCha20Poly1305(raw)
    assert reference.encrypt(nonce, plaintext, None) == ct + tag
    assert aead_open(cipher, key, nonce, ct, tag) == plaintext


@given(raw=st.sampled_from([16, 24]).flatmap(lambda n: st.binary(min_size=n, max_size=n)))
def test_short_aes_keys_round_trip(raw):
    key = SessionKey(raw)
    ct, tag = aead_seal(Cipher.AES_GCM, key, bytes(16), b"hello")
    assert AESGCM(raw).decrypt(bytes(16), ct + tag, None) == b"hello"
    assert aead_open(Cipher.AES_GCM, key, bytes(16), ct, tag) == b"hello"


@pytest.mark.parametrize("cipher", ALL)
def test_wrong_key_fails(cipher):
    ct, tag = aead_seal(cipher, SessionKey(K), _nonce(cipher), P)
    with pytest.raises(DecryptionError):
        aead_open(cipher, SessionKey(K[::-1]), _nonce(cipher), ct, tag)


@pytest.mark.parametrize("cipher", ALL)
def test_wrong_nonce_fails(cipher):
    ct, tag = aead_seal(cipher, SessionKey(K), _nonce(cipher), P)
    with pytest.raises(DecryptionError):
        aead_open(cipher, SessionKey(K), _nonce(cipher, 1), ct, tag)


@pytest.mark.parametrize("cipher", ALL)
@pytest.mark.parametrize("delta", [-1, 1, -4])
def test_wrong_nonce_length_fails_closed(cipher, delta):
    ct, tag = aead_seal(cipher, SessionKey(K), _nonce(cipher), P)
    nonce = bytes(nonce_size(cipher) + delta)
    with pytest.raises(DecryptionError):
        aead_open(cipher, SessionKey(K), nonce, ct, tag)


@pytest.mark.parametrize("cipher", ALL)
def test_every_flipped_bit_position_fails(cipher):
    ct, tag = aead_seal(cipher, SessionKey(K), _nonce(cipher), P[:24])
    for i in range(len(ct)):
        bad = bytearray(ct)
        bad[i] ^= 0x01
        with pytest.raises(DecryptionError):
            aead_open(cipher, SessionKey(K), _nonce(cipher), bytes(bad), tag)
    for i in range(len(tag)):
        bad = bytearray(tag)
        bad[i] ^= 0x80
        with pytest.raises(DecryptionError):
            aead_open(cipher, SessionKey(K), _nonce(cipher), ct, bytes(bad))


@pytest.mark.parametrize("cipher", ALL)
@pytest.mark.parametrize("tag_len", [0, 15, 17])
def test_bad_tag_length_fails(cipher, tag_len):
    ct, tag = aead_seal(cipher, SessionKey(K), _nonce(cipher), P)
    with pytest.raises(DecryptionError):
        aead_open(cipher, SessionKey(K), _nonce(cipher), ct, (tag * 2)[:tag_len])


def test_chacha_with_a_16_byte_key_fails_closed_on_open():
    key = SessionKey.from_legacy_crypto_key("f46351c54f61a715")
    with pytest.raises(DecryptionError):
        aead_open(Cipher.CHACHA20_POLY1305, key, bytes(12), b"x" * 10, bytes(16))


def test_chacha_with_a_16_byte_key_cannot_seal():
    key = SessionKey.from_legacy_crypto_key("f46351c54f61a715")
    with pytest.raises(LocalProtocolError):
        aead_seal(Cipher.CHACHA20_POLY1305, key, bytes(12), b"x")


@pytest.mark.parametrize("cipher", ALL)
def test_sealing_with_a_wrong_nonce_size_is_a_local_error(cipher):
    with pytest.raises(LocalProtocolError):
        aead_seal(cipher, SessionKey(K), bytes(nonce_size(cipher) - 1), b"x")


def test_decryption_error_says_nothing():
    messages = set()
    for cipher in ALL:
        ct, tag = aead_seal(cipher, SessionKey(K), _nonce(cipher), P)
        for args in [
            (SessionKey(K[::-1]), _nonce(cipher), ct, tag),
            (SessionKey(K), bytes(3), ct, tag),
            (SessionKey(K), _nonce(cipher), ct[1:], tag),
            (SessionKey(K), _nonce(cipher), ct, b""),
        ]:
            with pytest.raises(DecryptionError) as info:
                aead_open(cipher, *args)
            messages.add(str(info.value))
            assert info.value.__cause__ is None
    assert messages == {"decryption failed"}


def test_random_nonces_give_distinct_ciphertexts():
    key = SessionKey(K)
    seen = {aead_seal(Cipher.AES_GCM, key, os.urandom(16), P) for _ in range(50)}
    assert len(seen) == 50
