"""derive_psk: Argon2id(password, SHA-256(node_id), t=3, m=64 MiB, p=1, 32 bytes).

Each full-cost derivation takes about 0.2 s, so this module makes only a few.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import nacl.bindings
import pytest
from hivemind_proto._errors import LocalProtocolError
from hivemind_proto._noise import derive_psk
from hivemind_proto._noise._psk import argon2id

PASSWORD = "correct horse battery staple"
NODE_ID = "hub-node-1"
# Computed by derive_psk and confirmed with the reference Argon2 command-line
# tool (phc-winner-argon2):  printf %s PASSWORD | argon2 SALT -id -t 3 -m 16 -p 1 -l 32 -r
# with SALT the raw SHA-256 digest of NODE_ID (it contains no NUL byte).
PINNED = "65e1c013d90f070b8740d891c26766e50c5e9243833010f1003a97b9d37ee9f8"
CHEAP = {"iterations": 1, "memory_kib": 64}


def test_pinned_value():
    assert derive_psk(PASSWORD, NODE_ID).hex() == PINNED


@pytest.mark.skipif(shutil.which("argon2") is None, reason="reference argon2 CLI not installed")
def test_matches_reference_cli():
    salt = hashlib.sha256(NODE_ID.encode()).digest()
    assert b"\x00" not in salt
    argv = [b"argon2", salt, b"-id", b"-t", b"3", b"-m", b"16", b"-p", b"1", b"-l", b"32", b"-r"]
    result = subprocess.run(argv, input=PASSWORD.encode(), capture_output=True, timeout=30)
    assert result.returncode == 0
    assert result.stdout.decode().strip() == PINNED


def test_parameters_mean_what_libsodium_means():
    """libsodium only takes 16-byte salts, so compare the raw Argon2id at full cost."""
    salt = bytes(range(16))
    ours = argon2id(PASSWORD.encode(), salt, 3, 64 * 1024, 1)
    theirs = nacl.bindings.crypto_pwhash_alg(
        32,
        PASSWORD.encode(),
        salt,
        3,
        64 * 1024 * 1024,
        nacl.bindings.crypto_pwhash_ALG_ARGON2ID13,
    )
    assert ours == theirs


@pytest.mark.parametrize(
    "over", [{"memory_kib": 32 * 1024}, {"iterations": 2}], ids=["m-32MiB", "t-2"]
)
def test_default_cost_is_the_protocol_cost(over):
    assert derive_psk(PASSWORD, NODE_ID, **over).hex() != PINNED


def test_salt_is_sha256_of_node_id():
    salt = hashlib.sha256(NODE_ID.encode("utf-8")).digest()
    expected = argon2id(PASSWORD.encode("utf-8"), salt, 1, 64, 1)
    assert derive_psk(PASSWORD, NODE_ID, **CHEAP) == expected


def test_every_input_matters():
    values = {
        derive_psk(PASSWORD, NODE_ID, **CHEAP),
        derive_psk(PASSWORD + "!", NODE_ID, **CHEAP),
        derive_psk(PASSWORD, NODE_ID + "2", **CHEAP),
        derive_psk("pässwörd", NODE_ID, **CHEAP),
        derive_psk("passwörd", NODE_ID, **CHEAP),
    }
    assert len(values) == 5
    assert all(len(v) == 32 for v in values)


@pytest.mark.parametrize(
    ("password", "node_id", "over"),
    [("", NODE_ID, CHEAP), (PASSWORD, "", CHEAP), (PASSWORD, NODE_ID, {"memory_kib": 1})],
    ids=["empty-password", "empty-node-id", "memory-too-small"],
)
def test_invalid_inputs(password, node_id, over):
    with pytest.raises(LocalProtocolError):
        derive_psk(password, node_id, **over)
