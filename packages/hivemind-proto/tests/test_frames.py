"""Legacy encrypted framing: JSON text frames and binary frames."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hivemind_proto._ciphers import SessionKey, aead_seal, nonce_size
from hivemind_proto._encodings import decode_text, encode_text
from hivemind_proto._errors import DecryptionError, LocalProtocolError
from hivemind_proto._frames import (
    is_encrypted_json,
    open_binary_frame,
    open_json_frame,
    seal_binary_frame,
    seal_binary_frame_with_nonce,
    seal_json_frame,
    seal_json_frame_with_nonce,
)
from hivemind_proto._types import Cipher, TextEncoding
from hypothesis import given
from hypothesis import strategies as st

K = SessionKey(bytes.fromhex("229004201153d4177eba20889a5571695b229252ca1f5fc58d292ee322541154"))
OTHER = SessionKey(bytes(range(32)))
P = (
    b'{"msg_type": "bus", "payload": {"type": "recognizer_loop:utterance", '
    b'"data": {"utterances": ["hello"]}, "context": {}}}'
)
CIPHERS = list(Cipher)
ENCODINGS = list(TextEncoding)
AES_FRAME = (
    "000102030405060708090a0b0c0d0e0f4369959c3f39099deeb140cfb132e6090d879ed6b3c50096e6654f21b2"
    "cec9d13cbbaf02dc046dbe7ccc600a0cabeb96d382b63f22cff3caf893e35950c57d44552a3dcc13fe4872648a"
    "7c5588ee5eda8a6b4b8b0470198a374e717433c5ce5e532ffbcb3fa4f9484450ebc02ee2ba5b8732219453d6c9"
    "e1d0d6d9dc3347a74ab11df86a1de9ea"
)
CHACHA_FRAME = (
    "000102030405060708090a0b89f8e0d82d7efc8d28fbd86aadf05269f7542900cf9287062d6647e40380e3c8b9"
    "ffb2a71aa2be79a3128e1d956dbc0ed25112a54c6ab55a14ba360e80f1b8687cf90a656feafdf5470d6c7343ce"
    "4cc628b729c81a220f1d13adfbe03871c66fa5f66ee3ffbfd78c35cb31345d96e2f5e78e147c10314fd68c92cc"
    "35d78827cac775e42b3a73da"
)


def counter_rng():
    """A deterministic rng for tests: successive counter values, never repeating."""
    state = {"n": 0}

    def rng(size: int) -> bytes:
        state["n"] += 1
        return state["n"].to_bytes(size, "big")

    return rng


# --------------------------------------------------------------------------- binary vectors


def test_aes_binary_frame_vector():
    frame = seal_binary_frame_with_nonce(P, cipher=Cipher.AES_GCM, key=K, nonce=bytes(range(16)))
    assert frame.hex() == AES_FRAME
    assert len(frame) == 151
    assert open_binary_frame(frame, cipher=Cipher.AES_GCM, key=K) == P


def test_chacha_binary_frame_vector():
    frame = seal_binary_frame_with_nonce(
        P, cipher=Cipher.CHACHA20_POLY1305, key=K, nonce=bytes(range(12))
    )
    assert frame.hex() == CHACHA_FRAME
    assert open_binary_frame(frame, cipher=Cipher.CHACHA20_POLY1305, key=K) == P


# --------------------------------------------------------------------------- JSON vectors


PINNED_TAG_NONCE = {
    TextEncoding.JSON_HEX: ("d68c92cc35d78827cac775e42b3a73da", "000102030405060708090a0b"),
    TextEncoding.JSON_B64: ("1oySzDXXiCfKx3XkKzpz2g==", "AAECAwQFBgcICQoL"),
    TextEncoding.JSON_URLSAFE_B64: ("1oySzDXXiCfKx3XkKzpz2g==", "AAECAwQFBgcICQoL"),
    TextEncoding.JSON_B32: ("22GJFTBV26ECPSWHOXSCWOTT3I======", "AAAQEAYEAUDAOCAJBIFQ===="),
    TextEncoding.JSON_B91: ("Kk@M<l(x{G|KRynPI2ST", ":C#(:C?hVB$MSiB"),
    TextEncoding.JSON_Z85B: ("o}W-+iw3Yc=InA<9q/h*", "6Ge%0mt>l2CgNK3"),
    TextEncoding.JSON_Z85P: ("\x00!@k^ohp)Ti+eXU=d(}+9", "\x00009c61o!#m2NH?C"),
}


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_chacha_json_frame_vectors(encoding):
    text = seal_json_frame_with_nonce(
        P, cipher=Cipher.CHACHA20_POLY1305, key=K, encoding=encoding, nonce=bytes(range(12))
    )
    obj = json.loads(text)
    assert list(obj) == ["ciphertext", "tag", "nonce"]
    assert (obj["tag"], obj["nonce"]) == PINNED_TAG_NONCE[encoding]
    ct = bytes.fromhex(CHACHA_FRAME)[12:-16]
    assert obj["ciphertext"] == encode_text(ct, encoding)
    assert open_json_frame(obj, cipher=Cipher.CHACHA20_POLY1305, key=K, encoding=encoding) == P


def test_b64_ciphertext_prefixes():
    for encoding, prefix in [
        (TextEncoding.JSON_B64, "ifjg2C1+/I0o+9hqrfBS"),
        (TextEncoding.JSON_URLSAFE_B64, "ifjg2C1-_I0o-9hqrfBS"),
    ]:
        text = seal_json_frame_with_nonce(
            P, cipher=Cipher.CHACHA20_POLY1305, key=K, encoding=encoding, nonce=bytes(range(12))
        )
        assert json.loads(text)["ciphertext"].startswith(prefix)


@pytest.mark.parametrize("cipher", CIPHERS)
@pytest.mark.parametrize("encoding", ENCODINGS)
@given(plaintext=st.binary(max_size=200), nonce_seed=st.binary(min_size=16, max_size=16))
def test_json_frame_text_is_what_json_dumps_writes(cipher, encoding, plaintext, nonce_seed):
    nonce = nonce_seed[: nonce_size(cipher)]
    text = seal_json_frame_with_nonce(
        plaintext, cipher=cipher, key=K, encoding=encoding, nonce=nonce
    )
    ct, tag = aead_seal(cipher, K, nonce, plaintext)
    expected = json.dumps(
        {
            "ciphertext": encode_text(ct, encoding),
            "tag": encode_text(tag, encoding),
            "nonce": encode_text(nonce, encoding),
        }
    )
    assert text == expected
    obj = json.loads(text)
    assert open_json_frame(obj, cipher=cipher, key=K, encoding=encoding) == plaintext


@pytest.mark.parametrize("cipher", CIPHERS)
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_json_frame_without_tag_takes_it_from_the_ciphertext(cipher, encoding):
    nonce = bytes(nonce_size(cipher))
    ct, tag = aead_seal(cipher, K, nonce, P)
    obj = {"ciphertext": encode_text(ct + tag, encoding), "nonce": encode_text(nonce, encoding)}
    assert open_json_frame(obj, cipher=cipher, key=K, encoding=encoding) == P


@pytest.mark.parametrize("cipher", CIPHERS)
def test_json_frame_without_tag_and_short_ciphertext_fails(cipher):
    nonce = bytes(nonce_size(cipher))
    for size in (0, 1, 15):
        obj = {"ciphertext": "ab" * size, "nonce": nonce.hex()}
        with pytest.raises(DecryptionError):
            open_json_frame(obj, cipher=cipher, key=K, encoding=TextEncoding.JSON_HEX)


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("cipher", CIPHERS)
@pytest.mark.parametrize("encoding", ENCODINGS)
@given(plaintext=st.binary(max_size=300))
def test_json_round_trip_with_real_rng(cipher, encoding, plaintext):
    text = seal_json_frame(plaintext, cipher=cipher, key=K, encoding=encoding, rng=os.urandom)
    obj = json.loads(text)
    assert is_encrypted_json(obj)
    assert open_json_frame(obj, cipher=cipher, key=K, encoding=encoding) == plaintext


@pytest.mark.parametrize("cipher", CIPHERS)
@given(plaintext=st.binary(max_size=300))
def test_binary_round_trip_with_real_rng(cipher, plaintext):
    frame = seal_binary_frame(plaintext, cipher=cipher, key=K, rng=os.urandom)
    assert len(frame) == nonce_size(cipher) + len(plaintext) + 16
    assert open_binary_frame(frame, cipher=cipher, key=K) == plaintext


@pytest.mark.parametrize("cipher", CIPHERS)
def test_rng_supplies_the_nonce(cipher):
    rng = counter_rng()
    frame = seal_binary_frame(b"x", cipher=cipher, key=K, rng=rng)
    assert frame[: nonce_size(cipher)] == (1).to_bytes(nonce_size(cipher), "big")
    text = seal_json_frame(b"x", cipher=cipher, key=K, encoding=TextEncoding.JSON_HEX, rng=rng)
    assert json.loads(text)["nonce"] == (2).to_bytes(nonce_size(cipher), "big").hex()


@pytest.mark.parametrize("cipher", CIPHERS)
@pytest.mark.parametrize("bad", [lambda n: bytes(n - 1), lambda n: bytes(n + 1), lambda n: "0" * n])
def test_misbehaving_rng_is_a_local_error(cipher, bad):
    with pytest.raises(LocalProtocolError):
        seal_binary_frame(b"x", cipher=cipher, key=K, rng=bad)
    with pytest.raises(LocalProtocolError):
        seal_json_frame(b"x", cipher=cipher, key=K, encoding=TextEncoding.JSON_HEX, rng=bad)


@pytest.mark.parametrize("cipher", CIPHERS)
def test_nonces_are_unique_over_1000_frames(cipher):
    size = nonce_size(cipher)
    binary = {
        seal_binary_frame(b"", cipher=cipher, key=K, rng=os.urandom)[:size] for _ in range(1000)
    }
    assert len(binary) == 1000
    texts = {
        json.loads(
            seal_json_frame(
                b"", cipher=cipher, key=K, encoding=TextEncoding.JSON_B64, rng=os.urandom
            )
        )["nonce"]
        for _ in range(1000)
    }
    assert len(texts) == 1000
    assert all(len(decode_text(n, TextEncoding.JSON_B64)) == size for n in texts)


# --------------------------------------------------------------------------- tampering


@pytest.mark.parametrize("cipher", CIPHERS)
def test_flipping_any_byte_of_a_binary_frame_fails(cipher):
    frame = seal_binary_frame(P[:40], cipher=cipher, key=K, rng=os.urandom)
    for i in range(len(frame)):
        for mask in (0x01, 0x80):
            bad = bytearray(frame)
            bad[i] ^= mask
            with pytest.raises(DecryptionError):
                open_binary_frame(bytes(bad), cipher=cipher, key=K)


@pytest.mark.parametrize("cipher", CIPHERS)
def test_truncated_or_extended_binary_frames_fail(cipher):
    frame = seal_binary_frame(P, cipher=cipher, key=K, rng=os.urandom)
    for cut in range(len(frame)):
        with pytest.raises(DecryptionError):
            open_binary_frame(frame[:cut], cipher=cipher, key=K)
    with pytest.raises(DecryptionError):
        open_binary_frame(frame + b"\0", cipher=cipher, key=K)
    with pytest.raises(DecryptionError):
        open_binary_frame(frame[1:], cipher=cipher, key=K)


@pytest.mark.parametrize("cipher", CIPHERS)
def test_empty_plaintext_frame_has_minimum_length(cipher):
    frame = seal_binary_frame(b"", cipher=cipher, key=K, rng=os.urandom)
    assert len(frame) == nonce_size(cipher) + 16
    assert open_binary_frame(frame, cipher=cipher, key=K) == b""


@pytest.mark.parametrize("cipher", CIPHERS)
def test_wrong_key_or_wrong_cipher_fails(cipher):
    frame = seal_binary_frame(P, cipher=cipher, key=K, rng=os.urandom)
    with pytest.raises(DecryptionError):
        open_binary_frame(frame, cipher=cipher, key=OTHER)
    other = next(c for c in CIPHERS if c is not cipher)
    with pytest.raises(DecryptionError):
        open_binary_frame(frame, cipher=other, key=K)
    text = seal_json_frame(P, cipher=cipher, key=K, encoding=TextEncoding.JSON_B91, rng=os.urandom)
    with pytest.raises(DecryptionError):
        open_json_frame(json.loads(text), cipher=cipher, key=OTHER, encoding=TextEncoding.JSON_B91)
    with pytest.raises(DecryptionError):
        open_json_frame(json.loads(text), cipher=other, key=K, encoding=TextEncoding.JSON_B91)


def test_legacy_key_cannot_open_chacha_frames():
    legacy = SessionKey.from_legacy_crypto_key("f46351c54f61a715")
    with pytest.raises(DecryptionError):
        open_binary_frame(bytes(64), cipher=Cipher.CHACHA20_POLY1305, key=legacy)
    with pytest.raises(LocalProtocolError):
        seal_binary_frame(b"x", cipher=Cipher.CHACHA20_POLY1305, key=legacy, rng=os.urandom)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_json_frame_with_wrong_encoding_fails(encoding):
    other = next(e for e in ENCODINGS if e is not encoding)
    text = seal_json_frame(P, cipher=Cipher.AES_GCM, key=K, encoding=encoding, rng=os.urandom)
    with pytest.raises(DecryptionError):
        open_json_frame(json.loads(text), cipher=Cipher.AES_GCM, key=K, encoding=other)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda o: o.pop("ciphertext"),
        lambda o: o.pop("nonce"),
        lambda o: o.update(tag=None),
        lambda o: o.update(tag=123),
        lambda o: o.update(nonce=["00"]),
        lambda o: o.update(ciphertext={"a": 1}),
        lambda o: o.update(ciphertext=o["ciphertext"] + "zz"),
        lambda o: o.update(nonce=o["nonce"][:-2]),
        lambda o: o.update(nonce=o["nonce"] + "00"),
        lambda o: o.update(tag=o["tag"][:-2]),
        lambda o: o.update(ciphertext=o["ciphertext"][2:]),
        lambda o: o.update(tag=("00" if o["tag"][:2] != "00" else "11") + o["tag"][2:]),
    ],
)
def test_malformed_json_frames_fail_with_decryption_error(mutate):
    obj = json.loads(
        seal_json_frame(
            P, cipher=Cipher.AES_GCM, key=K, encoding=TextEncoding.JSON_HEX, rng=os.urandom
        )
    )
    mutate(obj)
    with pytest.raises(DecryptionError):
        open_json_frame(obj, cipher=Cipher.AES_GCM, key=K, encoding=TextEncoding.JSON_HEX)


@pytest.mark.parametrize("obj", [None, [], "ciphertext", 7, ["ciphertext", "nonce"]])
def test_non_object_json_frames_fail_with_decryption_error(obj):
    with pytest.raises(DecryptionError):
        open_json_frame(obj, cipher=Cipher.AES_GCM, key=K, encoding=TextEncoding.JSON_HEX)


@given(
    obj=st.dictionaries(
        st.sampled_from(["ciphertext", "tag", "nonce", "x"]),
        st.one_of(st.text(max_size=80), st.integers(), st.none(), st.binary(max_size=8)),
    ),
    cipher=st.sampled_from(CIPHERS),
    encoding=st.sampled_from(ENCODINGS),
)
def test_arbitrary_json_frames_raise_only_decryption_error(obj, cipher, encoding):
    with pytest.raises(DecryptionError):
        open_json_frame(obj, cipher=cipher, key=K, encoding=encoding)


@given(frame=st.binary(max_size=120), cipher=st.sampled_from(CIPHERS))
def test_arbitrary_binary_frames_raise_only_decryption_error(frame, cipher):
    with pytest.raises(DecryptionError):
        open_binary_frame(frame, cipher=cipher, key=K)


# --------------------------------------------------------------------------- classification


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"ciphertext": "", "nonce": ""}, True),
        ({"ciphertext": "", "tag": "", "nonce": ""}, True),
        ({"ciphertext": "", "nonce": "", "msg_type": "bus"}, False),
        ({"msg_type": "bus", "payload": {"data": "ciphertext nonce"}}, False),
        ({"ciphertext": ""}, False),
        ({"nonce": ""}, False),
        (["ciphertext", "nonce"], False),
        ('{"ciphertext": "", "nonce": ""}', False),
        (None, False),
    ],
)
def test_is_encrypted_json(obj, expected):
    assert is_encrypted_json(obj) is expected


# --------------------------------------------------------------------------- hygiene


@pytest.mark.parametrize("module", ["_encodings", "_ciphers", "_frames"])
def test_modules_are_sans_io(module):
    """No I/O, clock or randomness source is imported by the framing core."""
    import ast
    import importlib

    source = Path(importlib.import_module(f"hivemind_proto.{module}").__file__).read_text()
    imported = set()
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            imported.add(node.module.split(".")[0])
    forbidden = {"os", "secrets", "random", "time", "socket", "asyncio", "trio", "logging"}
    assert not imported & forbidden
    assert not names & {"urandom", "token_bytes", "getrandbits", "time", "monotonic"}
