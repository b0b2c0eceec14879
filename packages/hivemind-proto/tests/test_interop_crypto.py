"""Legacy frames against the released client's encryption (hivemind-bus-client 0.4.x).

Every cipher x every text encoding, both directions, JSON and binary frames:
frames the released ``hivemind_bus_client.encryption`` functions produce must
open with ours, and frames we seal must open with theirs. All cases go to the
released code in one subprocess (tests/interop/bus_client_crypto.py) running
in the interop virtualenv.

JSON-Z85P is the documented exception: the released decoder refuses text
that starts with the raw pad-count character, so nothing encoded with it can
be decrypted by the reference stack. We assert that fact, for their frames
as well as ours, instead of skipping those cases.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from hivemind_proto._ciphers import SessionKey, nonce_size
from hivemind_proto._encodings import decode_text
from hivemind_proto._frames import (
    open_binary_frame,
    open_json_frame,
    seal_binary_frame,
    seal_binary_frame_with_nonce,
    seal_json_frame,
    seal_json_frame_with_nonce,
)
from hivemind_proto._types import Cipher, TextEncoding

pytestmark = pytest.mark.interop

DRIVER = Path(__file__).parent / "interop" / "bus_client_crypto.py"

KEY = bytes.fromhex("229004201153d4177eba20889a5571695b229252ca1f5fc58d292ee322541154")
LEGACY_CRYPTO_KEY = "f46351c54f61a715"
PLAINTEXTS = {
    "utterance": json.dumps(
        {
            "msg_type": "bus",
            "payload": {
                "type": "recognizer_loop:utterance",
                "data": {"utterances": ["hello"]},
                "context": {},
            },
        }
    ),
    "unicode": json.dumps(
        {"msg_type": "bus", "payload": {"text": "héllo ✓ " * 300}}, ensure_ascii=False
    ),
    "short": "x",
}
BINARY_PLAINTEXTS = {"bytes": bytes(range(256)) * 3, "one": b"\x00"}
CASES = [(c, e, p) for c in Cipher for e in TextEncoding for p in PLAINTEXTS]
CASE_IDS = [f"{c.value}/{e.value}/{p}" for c, e, p in CASES]
BINARY_CASES = [(c, p) for c in Cipher for p in BINARY_PLAINTEXTS]
BINARY_IDS = [f"{c.value}/{p}" for c, p in BINARY_CASES]


def _id(*parts: object) -> str:
    return "/".join(p.value if isinstance(p, Cipher | TextEncoding) else str(p) for p in parts)


def _our_json_frames() -> dict[str, str]:
    key = SessionKey(KEY)
    return {
        _id(c, e, p): seal_json_frame(
            PLAINTEXTS[p].encode(), cipher=c, key=key, encoding=e, rng=os.urandom
        )
        for c, e, p in CASES
    }


def _our_tagless_frames() -> dict[str, str]:
    """Web Crypto layout: the tag travels at the end of the ciphertext."""
    key = SessionKey(KEY)
    frames = {}
    for cipher in Cipher:
        sealed = json.loads(
            seal_json_frame(
                PLAINTEXTS["utterance"].encode(),
                cipher=cipher,
                key=key,
                encoding=TextEncoding.JSON_HEX,
                rng=os.urandom,
            )
        )
        frames[_id(cipher, "tagless")] = json.dumps(
            {"ciphertext": sealed["ciphertext"] + sealed["tag"], "nonce": sealed["nonce"]}
        )
    return frames


def _our_binary_frames() -> dict[str, str]:
    key = SessionKey(KEY)
    return {
        _id(c, p): seal_binary_frame(BINARY_PLAINTEXTS[p], cipher=c, key=key, rng=os.urandom).hex()
        for c, p in BINARY_CASES
    }


@pytest.fixture(scope="module")
def exchange(interop_python: str):
    """Run every case through the released client once; return what we sent and got."""
    python = interop_python
    key = {"hex": KEY.hex()}
    legacy = {"text": LEGACY_CRYPTO_KEY}
    ours_json = _our_json_frames()
    ours_tagless = _our_tagless_frames()
    ours_binary = _our_binary_frames()
    legacy_plain = PLAINTEXTS["utterance"].encode()
    ours_legacy = seal_json_frame(
        legacy_plain,
        cipher=Cipher.AES_GCM,
        key=SessionKey.from_legacy_crypto_key(LEGACY_CRYPTO_KEY),
        encoding=TextEncoding.JSON_HEX,
        rng=os.urandom,
    )
    request = {
        "seal_json": [
            {"id": _id(c, e, p), "cipher": c.value, "encoding": e.value, "key": key,
             "plaintext": PLAINTEXTS[p]}
            for c, e, p in CASES
        ]
        + [{"id": "legacy", "cipher": "AES-GCM", "encoding": "JSON-HEX", "key": legacy,
            "plaintext": PLAINTEXTS["utterance"]}],
        "open_json": [
            {"id": i, "cipher": i.split("/")[0], "encoding": i.split("/")[1], "key": key,
             "frame": frame}
            for i, frame in ours_json.items()
        ]
        + [{"id": i, "cipher": i.split("/")[0], "encoding": "JSON-HEX", "key": key, "frame": f}
           for i, f in ours_tagless.items()]
        + [{"id": "legacy", "cipher": "AES-GCM", "encoding": "JSON-HEX", "key": legacy,
            "frame": ours_legacy}],
        "seal_binary": [
            {"id": _id(c, p), "cipher": c.value, "key": key,
             "plaintext": BINARY_PLAINTEXTS[p].hex()}
            for c, p in BINARY_CASES
        ],
        "open_binary": [
            {"id": i, "cipher": i.split("/")[0], "key": key, "frame": frame}
            for i, frame in ours_binary.items()
        ],
        "self_json": [
            {"id": _id(c, e), "cipher": c.value, "encoding": e.value, "key": key,
             "plaintext": PLAINTEXTS["utterance"]}
            for c in Cipher for e in TextEncoding
        ],
    }  # fmt: skip
    result = subprocess.run(
        [python, str(DRIVER)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout)


# --------------------------------------------------------------------------- theirs -> ours


@pytest.mark.parametrize(("cipher", "encoding", "plaintext"), CASES, ids=CASE_IDS)
def test_their_json_frames_open_with_ours(exchange, cipher, encoding, plaintext):
    text = exchange["seal_json"][_id(cipher, encoding, plaintext)]
    obj = json.loads(text)
    assert list(obj) == ["ciphertext", "tag", "nonce"]
    opened = open_json_frame(obj, cipher=cipher, key=SessionKey(KEY), encoding=encoding)
    assert opened == PLAINTEXTS[plaintext].encode()


@pytest.mark.parametrize(("cipher", "plaintext"), BINARY_CASES, ids=BINARY_IDS)
def test_their_binary_frames_open_with_ours(exchange, cipher, plaintext):
    frame = bytes.fromhex(exchange["seal_binary"][_id(cipher, plaintext)])
    opened = open_binary_frame(frame, cipher=cipher, key=SessionKey(KEY))
    assert opened == BINARY_PLAINTEXTS[plaintext]


def test_their_legacy_crypto_key_frame_opens_with_ours(exchange):
    obj = json.loads(exchange["seal_json"]["legacy"])
    key = SessionKey.from_legacy_crypto_key(LEGACY_CRYPTO_KEY)
    opened = open_json_frame(obj, cipher=Cipher.AES_GCM, key=key, encoding=TextEncoding.JSON_HEX)
    assert opened == PLAINTEXTS["utterance"].encode()


# --------------------------------------------------------------------------- ours -> theirs


@pytest.mark.parametrize(("cipher", "encoding", "plaintext"), CASES, ids=CASE_IDS)
def test_our_json_frames_open_with_theirs(exchange, cipher, encoding, plaintext):
    outcome = exchange["open_json"][_id(cipher, encoding, plaintext)]
    if encoding is TextEncoding.JSON_Z85P:
        # Documented reference-stack defect: their Z85P decoder refuses the
        # raw pad-count character, so decryption must fail on their side.
        assert outcome["ok"] is False, outcome
        return
    assert outcome == {"ok": True, "plaintext": PLAINTEXTS[plaintext]}


@pytest.mark.parametrize("cipher", list(Cipher), ids=[c.value for c in Cipher])
def test_our_tagless_json_frames_open_with_theirs(exchange, cipher):
    outcome = exchange["open_json"][_id(cipher, "tagless")]
    assert outcome == {"ok": True, "plaintext": PLAINTEXTS["utterance"]}


@pytest.mark.parametrize(("cipher", "plaintext"), BINARY_CASES, ids=BINARY_IDS)
def test_our_binary_frames_open_with_theirs(exchange, cipher, plaintext):
    outcome = exchange["open_binary"][_id(cipher, plaintext)]
    assert outcome == {"ok": True, "plaintext": BINARY_PLAINTEXTS[plaintext].hex()}


def test_our_legacy_crypto_key_frame_opens_with_theirs(exchange):
    assert exchange["open_json"]["legacy"] == {"ok": True, "plaintext": PLAINTEXTS["utterance"]}


@pytest.mark.parametrize("cipher", list(Cipher), ids=[c.value for c in Cipher])
@pytest.mark.parametrize("encoding", list(TextEncoding), ids=[e.value for e in TextEncoding])
def test_reference_stack_cannot_decrypt_its_own_z85p_frames(exchange, cipher, encoding):
    """The released code round-trips every encoding except JSON-Z85P."""
    outcome = exchange["self_json"][_id(cipher, encoding)]
    if encoding is TextEncoding.JSON_Z85P:
        assert outcome["ok"] is False, outcome
    else:
        assert outcome == {"ok": True, "plaintext": PLAINTEXTS["utterance"]}


# --------------------------------------------------------------------------- byte format


@pytest.mark.parametrize(("cipher", "encoding", "plaintext"), CASES, ids=CASE_IDS)
def test_we_write_their_json_frames_byte_for_byte(exchange, cipher, encoding, plaintext):
    """Re-sealed with their nonce, our frame text is identical to theirs."""
    theirs = exchange["seal_json"][_id(cipher, encoding, plaintext)]
    nonce = decode_text(json.loads(theirs)["nonce"], encoding)
    ours = seal_json_frame_with_nonce(
        PLAINTEXTS[plaintext].encode(),
        cipher=cipher,
        key=SessionKey(KEY),
        encoding=encoding,
        nonce=nonce,
    )
    assert ours == theirs


@pytest.mark.parametrize(("cipher", "plaintext"), BINARY_CASES, ids=BINARY_IDS)
def test_we_write_their_binary_frames_byte_for_byte(exchange, cipher, plaintext):
    theirs = bytes.fromhex(exchange["seal_binary"][_id(cipher, plaintext)])
    nonce = theirs[: nonce_size(cipher)]
    ours = seal_binary_frame_with_nonce(
        BINARY_PLAINTEXTS[plaintext], cipher=cipher, key=SessionKey(KEY), nonce=nonce
    )
    assert ours == theirs
