"""Drive the released client's frame encryption for the interop tests.

Runs inside the interop virtualenv (hivemind-bus-client 0.4.x), never in the
workspace environment. Reads one JSON request on stdin and writes one JSON
reply on stdout, so every case costs a single process start:

    request = {
        "seal_json":   [{"id", "cipher", "encoding", "key", "plaintext"}],
        "open_json":   [{"id", "cipher", "encoding", "key", "frame"}],
        "seal_binary": [{"id", "cipher", "key", "plaintext"}],   # plaintext in hex
        "open_binary": [{"id", "cipher", "key", "frame"}],       # frame in hex
    }

``key`` is ``{"hex": ...}`` for raw key bytes or ``{"text": ...}`` for a legacy
16-character crypto_key, which the released client passes as a string.
``self_json`` seals with the released code and opens the result with it too.
Each ``open_*`` and ``self_json`` result is ``{"ok": true, "plaintext": ...}`` or ``{"ok":
false, "error": <exception class name>}``.
"""

from __future__ import annotations

import json
import sys


def _key(spec: dict) -> bytes | str:
    return spec["text"] if "text" in spec else bytes.fromhex(spec["hex"])


def _hex(text: str) -> bytes:
    return bytes.fromhex(text)


def _attempt(fn, *args) -> dict:
    try:
        value = fn(*args)
    except Exception as exc:  # the outcome itself is what we report
        return {"ok": False, "error": type(exc).__name__}
    if isinstance(value, bytes):
        value = value.hex()
    return {"ok": True, "plaintext": value}


def main() -> None:
    out = sys.stdout
    sys.stdout = sys.stderr  # keep import-time chatter out of the reply
    from hivemind_bus_client import encryption as enc

    request = json.load(sys.stdin)
    reply = {
        "seal_json": {
            c["id"]: enc.encrypt_as_json(_key(c["key"]), c["plaintext"], c["cipher"], c["encoding"])
            for c in request.get("seal_json", [])
        },
        "open_json": {
            c["id"]: _attempt(
                enc.decrypt_from_json, _key(c["key"]), c["frame"], c["cipher"], c["encoding"]
            )
            for c in request.get("open_json", [])
        },
        "seal_binary": {
            c["id"]: enc.encrypt_bin(
                _key(c["key"]), bytes.fromhex(c["plaintext"]), c["cipher"]
            ).hex()
            for c in request.get("seal_binary", [])
        },
        "open_binary": {
            c["id"]: _attempt(
                enc.decrypt_bin, _key(c["key"]), bytes.fromhex(c["frame"]), c["cipher"]
            )
            for c in request.get("open_binary", [])
        },
    }
    reply["self_json"] = {
        c["id"]: _attempt(
            enc.decrypt_from_json,
            _key(c["key"]),
            enc.encrypt_as_json(_key(c["key"]), c["plaintext"], c["cipher"], c["encoding"]),
            c["cipher"],
            c["encoding"],
        )
        for c in request.get("self_json", [])
    }
    out.write(json.dumps(reply))
    out.flush()


if __name__ == "__main__":
    main()
