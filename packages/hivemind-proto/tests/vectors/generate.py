#!/usr/bin/env python3
"""Derive the legacy-wire known-answer vectors and write ``legacy.json``.

Everything here is computed from the formulas of the hub protocol
specification with the standard library and ``cryptography`` only. It never
imports ``hivemind_proto``: the vectors exist to check that package, so they
must not come from it. The encoders below are deliberately naive (digit by
digit, bit by bit) and share nothing with the package's table-driven ones.

Values the specification pins are asserted before anything is written.

Usage:
    python generate.py           write legacy.json next to this script
    python generate.py --check   exit 1 if legacy.json differs from a fresh run
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
import zlib
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

OUTPUT = Path(__file__).with_name("legacy.json")

# ----------------------------------------------------------------------------- encodings

Z85_ALPHABET = (
    "0123456789abcdefghijklmnopqrstuvwxyz"
    + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    + ".-:+=^!/*?&<>()[]{}@%$#"
)
B91_ALPHABET = (
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    + "".join(chr(c) for c in (0x21, 0x23, 0x24, 0x25, 0x26, 0x28, 0x29, 0x2A, 0x2B, 0x2C))
    + "".join(chr(c) for c in (0x2E, 0x2F, 0x3A, 0x3B, 0x3C, 0x3D, 0x3E, 0x3F, 0x40, 0x5B))
    + "".join(chr(c) for c in (0x5D, 0x5E, 0x5F, 0x60, 0x7B, 0x7C, 0x7D, 0x7E, 0x22))
)


def base85_digits(value: int) -> list[int]:
    """Five base-85 digits of a 32-bit value, least significant first."""
    digits = []
    for _ in range(5):
        value, digit = divmod(value, 85)
        digits.append(digit)
    return digits


def z85b(data: bytes) -> str:
    """Little-endian words, digits least significant first, short tail trimmed."""
    out = []
    for start in range(0, len(data), 4):
        group = data[start : start + 4]
        value = int.from_bytes(group.ljust(4, b"\0"), "little")
        keep = 5 if len(group) == 4 else len(group) + 1
        out += [Z85_ALPHABET[d] for d in base85_digits(value)[:keep]]
    return "".join(out)


def z85p(data: bytes) -> str:
    """Raw pad-count character, then big-endian words, most significant digit first."""
    pad = -len(data) % 4
    padded = data + b"\0" * pad
    out = [chr(pad)]
    for start in range(0, len(padded), 4):
        value = int.from_bytes(padded[start : start + 4], "big")
        out += [Z85_ALPHABET[d] for d in reversed(base85_digits(value))]
    return "".join(out)


def b91(data: bytes) -> str:
    """basE91: bits taken LSB-first, 13 bits (14 when the 13-bit value <= 88)."""
    bits = [(byte >> i) & 1 for byte in data for i in range(8)]
    out = []
    pos = 0
    while len(bits) - pos > 13:
        value = sum(bit << i for i, bit in enumerate(bits[pos : pos + 13]))
        width = 13
        if value <= 88:
            value = sum(bit << i for i, bit in enumerate(bits[pos : pos + 14]))
            width = 14
        out += [B91_ALPHABET[value % 91], B91_ALPHABET[value // 91]]
        pos += width
    rest = bits[pos:]
    if rest:
        value = sum(bit << i for i, bit in enumerate(rest))
        out.append(B91_ALPHABET[value % 91])
        if len(rest) > 7 or value > 90:
            out.append(B91_ALPHABET[value // 91])
    return "".join(out)


ENCODERS = {
    "JSON-HEX": lambda b: b.hex(),
    "JSON-B64": lambda b: base64.b64encode(b).decode(),
    "JSON-URLSAFE-B64": lambda b: base64.urlsafe_b64encode(b).decode(),
    "JSON-B32": lambda b: base64.b32encode(b).decode(),
    "JSON-B91": b91,
    "JSON-Z85B": z85b,
    "JSON-Z85P": z85p,
}

# ----------------------------------------------------------------------------- crypto


def hsub(password: str, iv: bytes) -> str:
    return (iv + hashlib.sha256(iv + password.encode()).digest()).hex()[:48]


def pbkdf2(password: str, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 100_000, 32)


def seal(cipher: str, key: bytes, nonce: bytes, plaintext: bytes) -> tuple[bytes, bytes]:
    aead = AESGCM(key) if cipher == "AES-GCM" else ChaCha20Poly1305(key)
    sealed = aead.encrypt(nonce, plaintext, None)
    return sealed[:-16], sealed[-16:]


def json_frame(encoding: str, ct: bytes, tag: bytes, nonce: bytes) -> str:
    enc = ENCODERS[encoding]
    return json.dumps({"ciphertext": enc(ct), "tag": enc(tag), "nonce": enc(nonce)})


# ----------------------------------------------------------------------------- WIRE-1

WIRE1_TYPES = {"shake": 0, "bus": 1, "bin": 12}


def wire1(
    msg_type: str,
    payload: bytes,
    metadata: dict[str, object],
    *,
    compressed: bool = False,
    versioned: bool = False,
    bin_type: int = 0,
) -> bytes:
    """Bit-pack one frame as a string of '0'/'1' characters, then to bytes."""
    meta = json.dumps(metadata).encode()
    if compressed:
        meta = zlib.compress(meta)
    bits = "1" + ("1" + f"{1:08b}" if versioned else "0")
    bits += f"{WIRE1_TYPES[msg_type]:05b}" + ("1" if compressed else "0")
    bits += f"{len(meta):08b}" + "".join(f"{b:08b}" for b in meta)
    if msg_type == "bin":
        bits += f"{bin_type:04b}"
    elif compressed:
        payload = zlib.compress(payload)
    bits += "".join(f"{b:08b}" for b in payload)
    bits = "0" * (-len(bits) % 8) + bits
    return int(bits, 2).to_bytes(len(bits) // 8, "big")


# ----------------------------------------------------------------------------- the vectors

PASSWORD = "5ae486f7f1c26bd4645bd052e4af3ea3"
CLIENT_IV = bytes.fromhex("0001020304050607")
HUB_IV = bytes.fromhex("f0e0d0c0b0a09080")
JS_PASSWORD = "test-password-123"
PLAINTEXT = json.dumps(
    {
        "msg_type": "bus",
        "payload": {
            "type": "recognizer_loop:utterance",
            "data": {"utterances": ["hello"]},
            "context": {},
        },
    }
).encode()
NONCES = {"AES-GCM": bytes(range(16)), "CHACHA20-POLY1305": bytes(range(12))}


def handshake_vectors() -> dict[str, object]:
    salt = bytes(a ^ b for a, b in zip(CLIENT_IV, HUB_IV, strict=True))
    key = pbkdf2(PASSWORD, salt)
    js_iv, js_salt = bytes.fromhex("deadbeefcafebabe"), bytes.fromhex("0102030405060708")
    return {
        "hsub": [
            {"password": JS_PASSWORD, "iv": js_iv.hex(), "hsub": hsub(JS_PASSWORD, js_iv)},
            {"password": PASSWORD, "iv": CLIENT_IV.hex(), "hsub": hsub(PASSWORD, CLIENT_IV)},
            {"password": PASSWORD, "iv": HUB_IV.hex(), "hsub": hsub(PASSWORD, HUB_IV)},
        ],
        "pbkdf2": [
            {"password": JS_PASSWORD, "salt": js_salt.hex(), "iterations": 100_000,
             "key": pbkdf2(JS_PASSWORD, js_salt).hex()},
            {"password": PASSWORD, "salt": salt.hex(), "iterations": 100_000, "key": key.hex()},
        ],
        "session": {
            "password": PASSWORD,
            "client_iv": CLIENT_IV.hex(),
            "hub_iv": HUB_IV.hex(),
            "client_hsub": hsub(PASSWORD, CLIENT_IV),
            "hub_hsub": hsub(PASSWORD, HUB_IV),
            "salt": salt.hex(),
            "key": key.hex(),
        },
    }  # fmt: skip


def aead_vectors(session_key: bytes) -> list[dict[str, str]]:
    js_key = pbkdf2(JS_PASSWORD, bytes.fromhex("0102030405060708"))
    cases = [
        ("session key, AES-256-GCM", "AES-GCM", session_key, NONCES["AES-GCM"], PLAINTEXT),
        ("session key, ChaCha20-Poly1305", "CHACHA20-POLY1305", session_key,
         NONCES["CHACHA20-POLY1305"], PLAINTEXT),
        ("upstream JS vector", "AES-GCM", js_key,
         bytes.fromhex("00112233445566778899aabbccddeeff"), b'{"msg_type":"bus","payload":"test"}'),
        ("AES-192-GCM, empty plaintext", "AES-GCM", session_key[:24], bytes(range(16, 32)), b""),
        ("ChaCha20-Poly1305, one byte", "CHACHA20-POLY1305", session_key[::-1],
         bytes(range(100, 112)), b"\x00"),
    ]  # fmt: skip
    out = []
    for name, cipher, key, nonce, plaintext in cases:
        ct, tag = seal(cipher, key, nonce, plaintext)
        out.append(
            {
                "name": name,
                "cipher": cipher,
                "key": key.hex(),
                "nonce": nonce.hex(),
                "plaintext": plaintext.hex(),
                "ciphertext": ct.hex(),
                "tag": tag.hex(),
                "frame": (nonce + ct + tag).hex(),
            }
        )
    return out


def json_frame_vectors(session_key: bytes) -> list[dict[str, str]]:
    sealed = {c: seal(c, session_key, nonce, PLAINTEXT) for c, nonce in NONCES.items()}
    return [
        {
            "cipher": cipher,
            "encoding": encoding,
            "key": session_key.hex(),
            "nonce": nonce.hex(),
            "plaintext": PLAINTEXT.decode(),
            "frame": json_frame(encoding, *sealed[cipher], nonce),
        }
        for cipher, nonce in NONCES.items()
        for encoding in ENCODERS
    ]


def legacy_crypto_key_vector() -> dict[str, str]:
    crypto_key = "f46351c54f61a715"
    nonce = bytes(range(16))
    plaintext = b'{"msg_type": "bus"}'
    ct, tag = seal("AES-GCM", crypto_key.encode(), nonce, plaintext)
    return {
        "crypto_key": crypto_key,
        "key": crypto_key.encode().hex(),
        "cipher": "AES-GCM",
        "encoding": "JSON-HEX",
        "nonce": nonce.hex(),
        "plaintext": plaintext.decode(),
        "ciphertext": ct.hex(),
        "tag": tag.hex(),
        "frame": json_frame("JSON-HEX", ct, tag, nonce),
    }


ENCODING_INPUTS = [b"", b"\x00", b"\x01", bytes(range(10)), bytes(range(12)), b"\xff" * 5,
                   bytes(range(256))]  # fmt: skip


def encoding_vectors() -> list[dict[str, str]]:
    return [
        {"encoding": name, "data": data.hex(), "text": enc(data)}
        for data in ENCODING_INPUTS
        for name, enc in ENCODERS.items()
    ]


UTTERANCE = (
    b'{"type": "recognizer_loop:utterance", "data": {"utterances": ["hello"]}, "context": {}}'
)


def wire1_vectors() -> list[dict[str, object]]:
    audio_meta = {"sample_rate": 16000, "sample_width": 2}
    cases = [
        ("upstream JS vector", "bus", b'{"type":"test"}', {}, False, False, None),
        ("BUS utterance, uncompressed", "bus", UTTERANCE, {}, False, False, None),
        ("BUS utterance, compressed", "bus", UTTERANCE, {}, True, False, None),
        ("upstream JS vector, versioned", "bus", b'{"type":"test"}', {}, False, True, None),
        ("BINARY RAW_AUDIO", "bin", bytes(range(8)), audio_meta, False, False, 1),
    ]
    out = []
    for name, msg_type, payload, meta, compressed, versioned, bin_type in cases:
        frame = wire1(msg_type, payload, meta, compressed=compressed, versioned=versioned,
                      bin_type=bin_type or 0)  # fmt: skip
        out.append(
            {
                "name": name,
                "msg_type": msg_type,
                "type_code": WIRE1_TYPES[msg_type],
                "versioned": versioned,
                "compressed": compressed,
                "metadata": meta,
                "bin_type": bin_type,
                "payload": payload.hex(),
                "frame": frame.hex(),
            }
        )
    return out


def build() -> dict[str, object]:
    handshake = handshake_vectors()
    session_key = bytes.fromhex(handshake["session"]["key"])  # type: ignore[index]
    return {
        "about": "Legacy HiveMind wire (profile L) known-answer vectors. Generated by "
        "generate.py from the specification's formulas; do not edit by hand.",
        "handshake": handshake,
        "legacy_crypto_key": legacy_crypto_key_vector(),
        "aead": aead_vectors(session_key),
        "json_frames": json_frame_vectors(session_key),
        "encodings": encoding_vectors(),
        "wire1": wire1_vectors(),
    }


# ----------------------------------------------------------------------------- pinned values


def check_pinned(v: dict[str, object]) -> None:
    """Assert every value the specification prints."""
    hs = v["handshake"]
    assert [h["hsub"] for h in hs["hsub"]] == [  # type: ignore[index]
        "deadbeefcafebabe47f0753a5a76dd104638641f6f108805",
        "00010203040506076b17fc08e70d936fbcbe7f447c6bfa09",
        "f0e0d0c0b0a09080150f281329e0d2f47a2bdf8fa94d2641",
    ]
    assert [p["key"] for p in hs["pbkdf2"]] == [  # type: ignore[index]
        "b0e2f9ac3479409d6e6c03adf0ec8b5b398faed914c4c520acc6986c5246bc7e",
        "229004201153d4177eba20889a5571695b229252ca1f5fc58d292ee322541154",
    ]
    assert hs["session"]["salt"] == "f0e1d2c3b4a59687"  # type: ignore[index]
    assert len(PLAINTEXT) == 119
    aes, chacha, js = v["aead"][:3]  # type: ignore[index]
    assert aes["tag"] == "e1d0d6d9dc3347a74ab11df86a1de9ea"
    assert aes["frame"].startswith("000102030405060708090a0b0c0d0e0f4369959c3f39099deeb1")
    assert len(bytes.fromhex(aes["frame"])) == 151
    assert chacha["tag"] == "d68c92cc35d78827cac775e42b3a73da"
    assert chacha["frame"].startswith("000102030405060708090a0b89f8e0d82d7efc8d28fbd86a")
    assert js["ciphertext"] == (
        "b047e2a2679dfed698b2fdd8c80a36eed427d7bee172e22fd96dbc3e0ee211126ea32d"
    )
    assert js["tag"] == "7cbdd1106901fef79e50e70e8159d275"
    v0 = v["legacy_crypto_key"]
    assert v0["key"] == "66343633353163353466363161373135"  # type: ignore[index]
    assert v0["ciphertext"] == "0980986ca1ca4dae8fb24a9c5096b45387b38f"  # type: ignore[index]
    assert v0["tag"] == "4e84f63d0b205f02b184a936eaf7e5c9"  # type: ignore[index]
    frames = {f["encoding"]: json.loads(f["frame"]) for f in v["json_frames"]  # type: ignore[index]
              if f["cipher"] == "CHACHA20-POLY1305"}  # fmt: skip
    pinned_tags = {
        "JSON-HEX": ("d68c92cc35d78827cac775e42b3a73da", "000102030405060708090a0b"),
        "JSON-B64": ("1oySzDXXiCfKx3XkKzpz2g==", "AAECAwQFBgcICQoL"),
        "JSON-URLSAFE-B64": ("1oySzDXXiCfKx3XkKzpz2g==", "AAECAwQFBgcICQoL"),
        "JSON-B32": ("22GJFTBV26ECPSWHOXSCWOTT3I======", "AAAQEAYEAUDAOCAJBIFQ===="),
        "JSON-B91": ("Kk@M<l(x{G|KRynPI2ST", ":C#(:C?hVB$MSiB"),
        "JSON-Z85B": ("o}W-+iw3Yc=InA<9q/h*", "6Ge%0mt>l2CgNK3"),
        "JSON-Z85P": ("\x00!@k^ohp)Ti+eXU=d(}+9", "\x00009c61o!#m2NH?C"),
    }
    for encoding, (tag, nonce) in pinned_tags.items():
        assert (frames[encoding]["tag"], frames[encoding]["nonce"]) == (tag, nonce), encoding
    assert frames["JSON-B64"]["ciphertext"].startswith("ifjg2C1+/I0o+9hqrfBS")
    assert frames["JSON-URLSAFE-B64"]["ciphertext"].startswith("ifjg2C1-_I0o-9hqrfBS")
    small = {(e["encoding"], e["data"]): e["text"] for e in v["encodings"]}  # type: ignore[index]
    ten = bytes(range(10)).hex()
    assert small["JSON-Z85B", ten] == "6Ge%0mt>l2hr0"
    assert small["JSON-B91", ten] == ":C#(:C?hVB$MA"
    assert small["JSON-Z85P", ten] == "\x02009c61o!#m2NHFh"
    assert small["JSON-Z85B", "01"] == "10"
    assert small["JSON-B91", "01"] == "BA"
    assert small["JSON-Z85P", "01"] == "\x030rr91"
    w = [x["frame"] for x in v["wire1"]]  # type: ignore[index]
    assert w[0] == "82027b7d7b2274797065223a2274657374227d"
    assert w[1].startswith("82027b7d7b2274797065223a20227265636f676e697a6572")
    assert len(w[1]) == 2 * 91
    assert w[2] == (
        "830a789cabae0500017500f9789cab562aa92c4855b252502a4a4dce4fcfcbac4a2d8acfc9cf2fb0"
        "2a2d29492d4acc4b4e55d251504a492c49042aaa56828b1603b9d14a19a93939f94ab1b54025c9f9"
        "7925a915252055b5b50044dc1e42"
    )
    assert w[3].startswith("c042027b7d")
    assert w[4] == (
        "098297b2273616d706c655f72617465223a2031363030302c202273616d706c655f7769647468223a"
        "20327d10001020304050607"
    )


def render() -> str:
    vectors = build()
    check_pinned(vectors)
    return json.dumps(vectors, indent=1) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if legacy.json is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT.name} is stale: run {Path(__file__).name}", file=sys.stderr)
            return 1
        print(f"{OUTPUT.name} is up to date")
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
