"""WIRE-1 driver for the released hivemind-bus-client (0.4.x).

Runs under the interop virtualenv's python, never under the workspace one: it
imports only the released ``hivemind_bus_client`` and the stdlib. It reads one
JSON request on stdin and writes one JSON reply on stdout (bytes as hex)::

    request: {"encode": [{"id", "msg_type", "payload" | "payload_hex",
                          "metadata", "bin_type", "compressed", "versioned"}],
              "decode": [{"id", "hex"}]}
    reply:   {"encoded": {id: hex},
              "decoded": {id: {"ok": true, "msg_type", "payload" | "payload_hex",
                               "metadata", "bin_type"}
                          | {"ok": false, "error": "<exception type>: <text>"}}}

``compressed`` is passed to ``get_bitstring`` as given (``null`` selects the
released library's "auto" mode). Encoding builds the released ``HiveMessage``
and hands ``message.payload`` to ``get_bitstring`` exactly as the released
client's ``emit`` does.
"""

from __future__ import annotations

import json
import os
import sys


def _quiet_stdout():
    """Keep library log lines off the reply channel: fd 1 becomes stderr."""
    reply = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return reply


def _their_message(case):
    from hivemind_bus_client.message import (
        HiveMessage,
        HiveMessageType,
        HiveMindBinaryPayloadType,
    )
    from ovos_bus_client import Message

    msg_type = HiveMessageType(case["msg_type"])
    if msg_type == HiveMessageType.BINARY:
        return HiveMessage(
            msg_type,
            payload=bytes.fromhex(case["payload_hex"]),
            metadata=case["metadata"],
            bin_type=HiveMindBinaryPayloadType(case["bin_type"]),
        )
    payload = case["payload"]
    if msg_type in (HiveMessageType.BUS, HiveMessageType.SHARED_BUS):
        payload = Message(payload["type"], payload.get("data"), payload.get("context"))
    return HiveMessage(msg_type, payload=payload, metadata=case["metadata"])


def _encode(case):
    from hivemind_bus_client.serialization import get_bitstring

    message = _their_message(case)
    bits = get_bitstring(
        hive_type=message.msg_type,
        payload=message.payload,
        compressed=case["compressed"],
        hivemeta=message.metadata,
        binary_type=message.bin_type,
        versioned=case["versioned"],
    )
    return bits.bytes.hex()


def _decode(case):
    from hivemind_bus_client.serialization import decode_bitstring

    try:
        message = decode_bitstring(bytes.fromhex(case["hex"]))
    except Exception as exc:  # the point is to report whatever the library raises
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    out = {
        "ok": True,
        "msg_type": getattr(message.msg_type, "value", message.msg_type),
        "metadata": message.metadata,
        "bin_type": int(message.bin_type),
    }
    raw = message._payload  # the decoded payload as stored, before any re-wrapping
    if isinstance(raw, bytes):
        out["payload_hex"] = raw.hex()
    else:
        out["payload"] = raw
    return out


def main():
    reply = _quiet_stdout()
    request = json.load(sys.stdin)
    result = {
        "encoded": {case["id"]: _encode(case) for case in request.get("encode", [])},
        "decoded": {case["id"]: _decode(case) for case in request.get("decode", [])},
    }
    json.dump(result, reply)
    reply.flush()


if __name__ == "__main__":
    main()
