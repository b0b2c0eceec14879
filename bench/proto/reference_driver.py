"""Reference side of the protocol benchmark: hivemind-bus-client 0.4.x's own code.

Runs inside the interop virtualenv (never the workspace one). Reads one JSON
request on stdin::

    {"key": hex, "budget": seconds, "texts": {size: text},
     "cases": [{"id", "framing": "json" | "wire1", "cipher", "encoding"}]}

and writes one JSON reply on stdout::

    {case_id: {size: {"seal": msgs/s, "open": msgs/s, "n": messages}}}

"seal" is what the released client's ``emit`` does to a message before the
socket write: ``serialize_message`` + ``encrypt_as_json`` for JSON frames,
``get_bitstring(compressed=True)`` + ``encrypt_bin`` for binarized ones.
"open" is what its ``on_message`` does after the socket read:
``decrypt_from_json`` + ``json.loads`` + ``HiveMessage(**...)``, or
``decrypt_bin`` + ``decode_bitstring``. Each round trip is checked once
before timing, so a broken pipeline cannot report a speed.
"""

from __future__ import annotations

import json
import os
import sys

from seal_open_timing import measure


def _quiet_stdout():
    """Keep library log lines off the reply channel: fd 1 becomes stderr."""
    reply = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return reply


def _message(text):
    from hivemind_bus_client.message import HiveMessage, HiveMessageType
    from ovos_bus_client import Message

    return HiveMessage(
        HiveMessageType.BUS, payload=Message("recognizer_loop:utterance", {"utterances": [text]})
    )


def _json_pipeline(key, cipher, encoding):
    from hivemind_bus_client.encryption import decrypt_from_json, encrypt_as_json
    from hivemind_bus_client.message import HiveMessage
    from hivemind_bus_client.util import serialize_message

    def seal(message):
        return encrypt_as_json(key, serialize_message(message), cipher=cipher, encoding=encoding)

    def open_(frame):
        text = decrypt_from_json(key, frame, cipher=cipher, encoding=encoding)
        return HiveMessage(**json.loads(text))

    return seal, open_


def _wire1_pipeline(key, cipher):
    from hivemind_bus_client.encryption import decrypt_bin, encrypt_bin
    from hivemind_bus_client.message import HiveMindBinaryPayloadType
    from hivemind_bus_client.serialization import decode_bitstring, get_bitstring

    def seal(message):
        bits = get_bitstring(
            hive_type=message.msg_type,
            payload=message.payload,
            compressed=True,
            binary_type=HiveMindBinaryPayloadType.UNDEFINED,
            hivemeta=message.metadata,
        )
        return encrypt_bin(key, bits.bytes, cipher=cipher)

    def open_(frame):
        return decode_bitstring(decrypt_bin(key, frame, cipher=cipher))

    return seal, open_


def _check(seal, open_, message, text):
    received = open_(seal(message))
    if received.payload.data["utterances"] != [text]:
        raise AssertionError("the reference pipeline did not round-trip")


def main():
    reply = _quiet_stdout()
    request = json.load(sys.stdin)
    key = bytes.fromhex(request["key"])
    results = {}
    for case in request["cases"]:
        if case["framing"] == "json":
            seal, open_ = _json_pipeline(key, case["cipher"], case["encoding"])
        else:
            seal, open_ = _wire1_pipeline(key, case["cipher"])
        per_size = {}
        for size, text in request["texts"].items():
            message = _message(text)
            _check(seal, open_, message, text)
            per_size[size] = measure(seal, open_, message, request["budget"])
        results[case["id"]] = per_size
    json.dump(results, reply)
    reply.flush()


if __name__ == "__main__":
    main()
