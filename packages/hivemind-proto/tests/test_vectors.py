"""Our encodings, ciphers and frames against the stored legacy known-answer vectors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hivemind_proto._ciphers import SessionKey, aead_open, aead_seal
from hivemind_proto._encodings import decode_text, encode_text
from hivemind_proto._frames import (
    open_binary_frame,
    open_json_frame,
    seal_binary_frame_with_nonce,
    seal_json_frame_with_nonce,
)
from hivemind_proto._types import Cipher, TextEncoding

VECTOR_DIR = Path(__file__).with_name("vectors")
VECTORS = json.loads((VECTOR_DIR / "legacy.json").read_text(encoding="utf-8"))


def _ids(cases, *fields):
    return ["/".join(str(case[f]) for f in fields) for case in cases]


def test_generator_output_is_up_to_date():
    result = subprocess.run(
        [sys.executable, str(VECTOR_DIR / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_vector_file_covers_every_cipher_and_encoding():
    pairs = {(f["cipher"], f["encoding"]) for f in VECTORS["json_frames"]}
    assert pairs == {(c.value, e.value) for c in Cipher for e in TextEncoding}
    assert {e["encoding"] for e in VECTORS["encodings"]} == {e.value for e in TextEncoding}
    assert {a["cipher"] for a in VECTORS["aead"]} == {c.value for c in Cipher}
    assert len(VECTORS["wire1"]) >= 5


@pytest.mark.parametrize(
    "case", VECTORS["encodings"], ids=_ids(VECTORS["encodings"], "encoding", "data")
)
def test_encoding_vector(case):
    encoding = TextEncoding(case["encoding"])
    data = bytes.fromhex(case["data"])
    assert encode_text(data, encoding) == case["text"]
    assert decode_text(case["text"], encoding) == data


@pytest.mark.parametrize("case", VECTORS["aead"], ids=_ids(VECTORS["aead"], "name"))
def test_aead_vector(case):
    cipher = Cipher(case["cipher"])
    key = SessionKey(bytes.fromhex(case["key"]))
    nonce = bytes.fromhex(case["nonce"])
    plaintext = bytes.fromhex(case["plaintext"])
    ct, tag = aead_seal(cipher, key, nonce, plaintext)
    assert (ct.hex(), tag.hex()) == (case["ciphertext"], case["tag"])
    assert aead_open(cipher, key, nonce, ct, tag) == plaintext
    frame = seal_binary_frame_with_nonce(plaintext, cipher=cipher, key=key, nonce=nonce)
    assert frame.hex() == case["frame"]
    assert open_binary_frame(bytes.fromhex(case["frame"]), cipher=cipher, key=key) == plaintext


@pytest.mark.parametrize(
    "case", VECTORS["json_frames"], ids=_ids(VECTORS["json_frames"], "cipher", "encoding")
)
def test_json_frame_vector(case):
    cipher = Cipher(case["cipher"])
    encoding = TextEncoding(case["encoding"])
    key = SessionKey(bytes.fromhex(case["key"]))
    plaintext = case["plaintext"].encode()
    text = seal_json_frame_with_nonce(
        plaintext, cipher=cipher, key=key, encoding=encoding, nonce=bytes.fromhex(case["nonce"])
    )
    assert text == case["frame"]
    obj = json.loads(case["frame"])
    assert open_json_frame(obj, cipher=cipher, key=key, encoding=encoding) == plaintext


def test_legacy_crypto_key_vector():
    case = VECTORS["legacy_crypto_key"]
    key = SessionKey.from_legacy_crypto_key(case["crypto_key"])
    assert key.raw.hex() == case["key"]
    nonce = bytes.fromhex(case["nonce"])
    text = seal_json_frame_with_nonce(
        case["plaintext"].encode(),
        cipher=Cipher(case["cipher"]),
        key=key,
        encoding=TextEncoding(case["encoding"]),
        nonce=nonce,
    )
    assert text == case["frame"]
    obj = json.loads(text)
    assert (obj["ciphertext"], obj["tag"]) == (case["ciphertext"], case["tag"])


def test_session_key_of_the_handshake_vector_opens_the_frames():
    key = SessionKey(bytes.fromhex(VECTORS["handshake"]["session"]["key"]))
    for case in VECTORS["aead"][:2]:
        cipher = Cipher(case["cipher"])
        frame = bytes.fromhex(case["frame"])
        assert open_binary_frame(frame, cipher=cipher, key=key).hex() == case["plaintext"]
