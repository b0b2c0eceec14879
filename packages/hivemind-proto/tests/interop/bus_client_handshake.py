"""Drive the released password handshake (poorman_handshake 1.x) for the interop tests.

Runs inside the interop virtualenv, never in the workspace environment. It
speaks two rounds of line-delimited JSON over stdin/stdout, so the released
side draws its own random IVs and still gets to check our answer:

round 1, request ``{"pairs": [...], "hsubs": [...], "matches": [...], "plaintext"}``:

* each pair ``{"id", "password", "envelope"}``: a fresh
  ``PasswordHandShake(password)`` makes its envelope, then verifies ours with
  ``receive_and_verify`` exactly as ``HiveMindSlaveProtocol`` does. If that
  succeeds the released session key (``.secret``) seals ``plaintext`` the way
  the released client seals frames (``encrypt_as_json`` with every cipher).
  Reply ``{"envelope", "iv", "verified", "secret" | null, "sealed": {cipher: frame}}``.
* each hsub ``{"id", "password", "iv", "length"}``: ``create_hsub`` with a
  chosen IV and length. Reply: the envelope text.
* each match ``{"id", "password", "envelope"}``: ``match_hsub``. Reply: bool.
* ``reflected``: one handshake verifies its own envelope (what a meddler who
  bounces it back gets). Reply ``{"verified", "secret"}``.

round 2, request ``{"open": [{"id", "pair", "cipher", "frame"}]}``: open our
frames with the released key of that pair (``decrypt_from_json``). Reply
``{id: {"ok": true, "plaintext"} | {"ok": false, "error"}}``.

Key bytes travel as hex. Test passwords only: nothing here is a secret.
"""

from __future__ import annotations

import json
import os
import sys

CIPHERS = ("AES-GCM", "CHACHA20-POLY1305")
ENCODING = "JSON-B64"


def _quiet_stdout():
    """Keep library log lines off the reply channel: fd 1 becomes stderr."""
    reply = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return reply


def _send(reply, obj) -> None:
    reply.write(json.dumps(obj) + "\n")
    reply.flush()


def _pair(case, plaintext):
    from hivemind_bus_client.encryption import encrypt_as_json
    from poorman_handshake import PasswordHandShake

    theirs = PasswordHandShake(case["password"])
    envelope = theirs.generate_handshake()
    verified = bool(theirs.receive_and_verify(case["envelope"]))
    out = {"envelope": envelope, "iv": theirs.iv.hex(), "verified": verified}
    if not verified:
        return out, None
    secret = theirs.secret
    out["secret"] = secret.hex()
    out["sealed"] = {c: encrypt_as_json(secret, plaintext, c, ENCODING) for c in CIPHERS}
    return out, secret


def _reflected(password):
    from poorman_handshake import PasswordHandShake

    theirs = PasswordHandShake(password)
    own = theirs.generate_handshake()
    verified = bool(theirs.receive_and_verify(own))
    return {"verified": verified, "secret": theirs.secret.hex() if verified else None}


def _open(secret, cipher, frame):
    from hivemind_bus_client.encryption import decrypt_from_json

    try:
        return {"ok": True, "plaintext": decrypt_from_json(secret, frame, cipher, ENCODING)}
    except Exception as exc:  # the outcome itself is what we report
        return {"ok": False, "error": type(exc).__name__}


def main() -> None:
    from poorman_handshake.symmetric.utils import create_hsub, match_hsub

    reply = _quiet_stdout()
    request = json.loads(sys.stdin.readline())
    secrets = {}
    pairs = {}
    for case in request["pairs"]:
        pairs[case["id"]], secrets[case["id"]] = _pair(case, request["plaintext"])
    _send(
        reply,
        {
            "pairs": pairs,
            "hsubs": {
                c["id"]: create_hsub(c["password"], bytes.fromhex(c["iv"]), c["length"])
                for c in request["hsubs"]
            },
            "matches": {
                c["id"]: bool(match_hsub(c["envelope"], c["password"])) for c in request["matches"]
            },
            "reflected": _reflected(request["reflected_password"]),
        },
    )
    second = json.loads(sys.stdin.readline())
    _send(
        reply,
        {
            c["id"]: _open(secrets[c["pair"]], c["cipher"], c["frame"])
            for c in second["open"]
            if secrets.get(c["pair"]) is not None
        },
    )


if __name__ == "__main__":
    main()
