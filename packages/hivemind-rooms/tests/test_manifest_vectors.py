"""Known-answer vector for manifests (spec 12.2 check 6).

The vector file pins the canonical bytes, hash and signature. The checks use
independent implementations where they exist: Python's ``json`` for the
canonical form (keys here are ASCII, where it equals RFC 8785), ``hashlib``
for the hash, and pyca/cryptography's Ed25519 for the signature (Ed25519 is
deterministic), anchored on the RFC 8032 test-1 key.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hivemind_rooms.canonical import canonical_json
from hivemind_rooms.manifest import OwnerKey, sign_manifest, verify_signed_manifest

VECTOR = json.loads((Path(__file__).parent / "vectors" / "manifest-v1.json").read_text("utf-8"))
RFC8032_TEST1_PUBLIC = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"


def test_canonical_bytes_match_an_independent_serialiser():
    independent = json.dumps(
        VECTOR["manifest"], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
    assert canonical_json(VECTOR["manifest"]) == independent
    assert independent.decode("utf-8") == VECTOR["canonical_utf8"]
    assert hashlib.sha256(independent).hexdigest() == VECTOR["manifest_hash"]


def test_signature_matches_an_independent_ed25519():
    seed = bytes.fromhex(VECTOR["owner_seed_hex"])
    other = Ed25519PrivateKey.from_private_bytes(seed)
    public = other.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert public.hex() == RFC8032_TEST1_PUBLIC
    assert base64.b64encode(public).decode() == VECTOR["signer_pubkey_b64"]
    signature = other.sign(VECTOR["canonical_utf8"].encode("utf-8"))
    assert base64.b64encode(signature).decode() == VECTOR["signature_b64"]


def test_our_signer_reproduces_the_vector():
    key = OwnerKey.from_seed(bytes.fromhex(VECTOR["owner_seed_hex"]))
    env = sign_manifest(VECTOR["manifest"], key)
    assert env["manifest_hash"] == VECTOR["manifest_hash"]
    assert env["signature_b64"] == VECTOR["signature_b64"]
    stored = {k: VECTOR[k] for k in ("manifest_hash", "signature_b64", "signer_pubkey_b64")}
    stored["manifest"] = VECTOR["manifest"]
    assert verify_signed_manifest(stored, VECTOR["signer_pubkey_b64"]) == VECTOR["manifest"]
