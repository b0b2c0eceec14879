"""The password handshake against the released one (poorman_handshake 1.x).

Function level, both directions, in one subprocess of the interop virtualenv
(tests/interop/bus_client_handshake.py): the released ``PasswordHandShake``
draws its own IV and verifies our envelope, ours verifies its envelope, and
both sides derive the session key. The keys are compared directly and by use:
frames the released client's ``encrypt_as_json`` seals with its key open with
ours, and frames we seal open with theirs.

Ours is stricter than the released code in two ways, both checked here: a
reflected envelope (our own IV coming back, which would zero the salt) is
refused, and so is an envelope made with another password; the error says
the same thing in both cases.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from hivemind_proto import Cipher, RemoteProtocolError, TextEncoding
from hivemind_proto.hazmat import (
    PBKDF2_ITERATIONS,
    PasswordHandshake,
    SessionKey,
    make_envelope,
    open_json_frame,
    seal_json_frame,
    verify_envelope,
)

pytestmark = pytest.mark.interop

DRIVER = Path(__file__).parent / "interop" / "bus_client_handshake.py"
DRIVER_TIMEOUT = 60.0

PASSWORDS = {
    "ascii": "correct horse battery staple",
    "unicode": "pässwörd ✓ 🐝 日本",
    "short": "x",
}
WRONG_PASSWORD = "Correct horse battery staple"
LENGTHS = (48, 64, 80)
PLAINTEXT = json.dumps(
    {"msg_type": "hello", "payload": {"site_id": "kitchen", "note": "ünïcödé"}},
    ensure_ascii=False,
)
PAIR_IDS = list(PASSWORDS)
KEY_CASES = [(p, c) for p in PAIR_IDS for c in Cipher]
KEY_IDS = [f"{p}/{c.value}" for p, c in KEY_CASES]
LENGTH_CASES = [(p, n) for p in PAIR_IDS for n in LENGTHS]
LENGTH_IDS = [f"{p}/{n}" for p, n in LENGTH_CASES]


class _Driver:
    """The driver process, spoken to one JSON line at a time, killed after a deadline."""

    def __init__(self, python: str, home: Path) -> None:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}
        self.proc = subprocess.Popen(
            [python, str(DRIVER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            env=env,
        )
        self._watchdog = threading.Timer(DRIVER_TIMEOUT, self.proc.kill)
        self._watchdog.start()

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            assert self.proc.stderr is not None
            pytest.fail(f"driver ended early: {self.proc.stderr.read()[-4000:]}")
        return json.loads(line)

    def finish(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        assert self.proc.wait() == 0

    def close(self) -> None:
        """Kill the process if still running and release every pipe."""
        self._watchdog.cancel()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture(scope="module")
def exchange(tmp_path_factory: pytest.TempPathFactory, interop_python: str) -> dict[str, Any]:
    """Both rounds with the released code; returns our handshakes and their replies."""
    ours = {pid: PasswordHandshake(pw, os.urandom(8)) for pid, pw in PASSWORDS.items()}
    length_ivs = {case: os.urandom(8) for case in LENGTH_CASES}
    driver = _Driver(interop_python, tmp_path_factory.mktemp("handshake-home"))
    try:
        first = driver.ask(
            {
                "plaintext": PLAINTEXT,
                "pairs": [
                    {"id": pid, "password": PASSWORDS[pid], "envelope": hs.envelope}
                    for pid, hs in ours.items()
                ]
                + [{"id": "wrong", "password": WRONG_PASSWORD, "envelope": ours["ascii"].envelope}],
                "hsubs": [
                    {"id": f"{p}/{n}", "password": PASSWORDS[p], "iv": length_ivs[p, n].hex(),
                     "length": n}
                    for p, n in LENGTH_CASES
                ]
                + [
                    {"id": f"reflect/{pid}", "password": PASSWORDS[pid], "iv": hs.iv.hex(),
                     "length": 48}
                    for pid, hs in ours.items()
                ],
                "matches": [
                    {"id": f"{p}/{n}", "password": PASSWORDS[p],
                     "envelope": make_envelope(PASSWORDS[p], length_ivs[p, n], n)}
                    for p, n in LENGTH_CASES
                ]
                + [{"id": "wrong", "password": WRONG_PASSWORD,
                    "envelope": ours["ascii"].envelope}],
                "reflected_password": PASSWORDS["ascii"],
            }
        )  # fmt: skip
        keys = {
            pid: hs.complete(first["pairs"][pid]["envelope"])
            for pid, hs in ours.items()
            if first["pairs"][pid]["verified"]
        }
        frames = [
            {
                "id": f"{pid}/{cipher.value}",
                "pair": pid,
                "cipher": cipher.value,
                "frame": seal_json_frame(
                    PLAINTEXT.encode(),
                    cipher=cipher,
                    key=key,
                    encoding=TextEncoding.JSON_B64,
                    rng=os.urandom,
                ),
            }
            for pid, key in keys.items()
            for cipher in Cipher
        ]
        second = driver.ask({"open": frames})
        driver.finish()
    finally:
        driver.close()
    return {"ours": ours, "ivs": length_ivs, "keys": keys, **first, "opened": second}


# --------------------------------------------------------------------------- theirs -> ours


@pytest.mark.parametrize("pid", PAIR_IDS)
def test_their_envelope_verifies_with_ours(exchange, pid):
    theirs = exchange["pairs"][pid]
    ours: PasswordHandshake = exchange["ours"][pid]
    peer_iv = verify_envelope(PASSWORDS[pid], theirs["envelope"], own_iv=ours.iv)
    assert peer_iv == bytes.fromhex(theirs["iv"])
    assert len(theirs["envelope"]) == 48


@pytest.mark.parametrize(("pid", "length"), LENGTH_CASES, ids=LENGTH_IDS)
def test_envelopes_are_byte_identical_at_every_length(exchange, pid, length):
    iv = exchange["ivs"][pid, length]
    theirs = exchange["hsubs"][f"{pid}/{length}"]
    assert theirs == make_envelope(PASSWORDS[pid], iv, length)
    assert verify_envelope(PASSWORDS[pid], theirs) == iv


# --------------------------------------------------------------------------- ours -> theirs


@pytest.mark.parametrize("pid", PAIR_IDS)
def test_our_envelope_verifies_with_theirs(exchange, pid):
    assert exchange["pairs"][pid]["verified"] is True


@pytest.mark.parametrize(("pid", "length"), LENGTH_CASES, ids=LENGTH_IDS)
def test_their_verifier_accepts_our_envelopes_at_every_length(exchange, pid, length):
    assert exchange["matches"][f"{pid}/{length}"] is True


# --------------------------------------------------------------------------- the session key


@pytest.mark.parametrize("pid", PAIR_IDS)
def test_both_sides_derive_the_same_32_byte_key(exchange, pid):
    key: SessionKey = exchange["keys"][pid]
    theirs = bytes.fromhex(exchange["pairs"][pid]["secret"])
    assert len(theirs) == 32
    assert key == SessionKey(theirs)


@pytest.mark.parametrize(("pid", "cipher"), KEY_CASES, ids=KEY_IDS)
def test_frames_they_seal_with_their_key_open_with_ours(exchange, pid, cipher):
    frame = json.loads(exchange["pairs"][pid]["sealed"][cipher.value])
    opened = open_json_frame(
        frame, cipher=cipher, key=exchange["keys"][pid], encoding=TextEncoding.JSON_B64
    )
    assert opened.decode("utf-8") == PLAINTEXT


@pytest.mark.parametrize(("pid", "cipher"), KEY_CASES, ids=KEY_IDS)
def test_frames_we_seal_with_our_key_open_with_theirs(exchange, pid, cipher):
    assert exchange["opened"][f"{pid}/{cipher.value}"] == {"ok": True, "plaintext": PLAINTEXT}


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("pid", PAIR_IDS)
def test_reflected_envelope_is_refused_by_ours(exchange, pid):
    ours: PasswordHandshake = exchange["ours"][pid]
    reflected = exchange["hsubs"][f"reflect/{pid}"]
    # the released code, given our IV, rebuilds exactly our envelope ...
    assert reflected == ours.envelope
    # ... and ours refuses to complete with it (the salt would be all zeros)
    with pytest.raises(RemoteProtocolError, match=r"^handshake authentication failed$"):
        ours.complete(reflected)
    with pytest.raises(RemoteProtocolError):
        verify_envelope(PASSWORDS[pid], reflected, own_iv=ours.iv)


def test_released_handshake_accepts_its_own_reflection(exchange):
    """The weakness ours closes: the released side keys itself with a zero salt."""
    outcome = exchange["reflected"]
    assert outcome["verified"] is True
    zero_salt_key = hashlib.pbkdf2_hmac(
        "sha256", PASSWORDS["ascii"].encode(), bytes(8), PBKDF2_ITERATIONS
    )
    assert outcome["secret"] == zero_salt_key.hex()


def test_wrong_password_is_refused_by_ours(exchange):
    theirs = exchange["pairs"]["wrong"]
    with pytest.raises(RemoteProtocolError, match=r"^handshake authentication failed$"):
        verify_envelope(PASSWORDS["ascii"], theirs["envelope"])
    with pytest.raises(RemoteProtocolError):
        PasswordHandshake(PASSWORDS["ascii"], os.urandom(8)).complete(theirs["envelope"])
    # the released side refuses our envelope too, and derives no key
    assert theirs["verified"] is False
    assert "secret" not in theirs
    assert exchange["matches"]["wrong"] is False
    # yet their envelope is well formed: only the password differs
    assert verify_envelope(WRONG_PASSWORD, theirs["envelope"]) == bytes.fromhex(theirs["iv"])
