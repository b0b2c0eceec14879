"""Drive the released hivemind-bus-client (0.4.x) against a hub, for the end-to-end tests.

Runs inside the interop virtualenv, never in the workspace environment.
Usage: python bus_satellite.py '<json request>'; prints one JSON line of results.

Modes:
  chat:    connect, send one utterance and one message type the client is not
           granted; report the ``speak`` reply and the ``hive.policy.denied`` notice.
  listen:  connect, then record every ``speak`` received until ``stop_file``
           exists (or ``seconds`` pass).
  refused: try to connect; report the close code the hub sent.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time

import websocket
from hivemind_bus_client import HiveMessageBusClient
from hivemind_bus_client.message import HiveMessage, HiveMessageType
from ovos_bus_client.message import Message
from ovos_utils.fakebus import FakeBus

logging.disable(logging.CRITICAL)


CLOSE_CODES: list = []
_recv_frame = websocket.WebSocket.recv_data_frame


def _noting_close(self, control_frame=False):
    """Note the code of every close frame the hub sends.

    The released client reconnects from inside its error callback, so its own
    ``on_close`` never sees the code; the frame layer below it does.
    """
    opcode, frame = _recv_frame(self, control_frame)
    if opcode == websocket.ABNF.OPCODE_CLOSE and frame.data and len(frame.data) >= 2:
        CLOSE_CODES.append(256 * frame.data[0] + frame.data[1])
    return opcode, frame


websocket.WebSocket.recv_data_frame = _noting_close


class Recorder(HiveMessageBusClient):
    """The released client, unchanged."""


def _client(req: dict) -> Recorder:
    return Recorder(
        key=req["key"],
        password=req["password"],
        host="ws://127.0.0.1",
        port=req["port"],
        useragent=req.get("useragent", "InteropSat"),
        self_signed=False,
    )


def _connected(req: dict) -> Recorder:
    hive = _client(req)
    hive.connect(FakeBus())
    return hive


def chat(req: dict) -> dict:
    hive = _connected(req)
    got: dict = {}
    speak, denied = threading.Event(), threading.Event()

    def on_speak(m):
        got["speak"] = {"data": m.data, "context": m.context}
        speak.set()

    def on_denied(m):
        got["denied"] = {"data": m.data, "context": m.context}
        denied.set()

    hive.on_mycroft("speak", on_speak)
    hive.on_mycroft("hive.policy.denied", on_denied)
    utterance = Message(req["msg_type"], {"utterances": [req["utterance"]], "lang": "en-US"})
    hive.emit(HiveMessage(HiveMessageType.BUS, payload=utterance))
    got["speak_ok"] = speak.wait(20)
    hive.emit(HiveMessage(HiveMessageType.BUS, payload=Message(req["forbidden_type"], {})))
    got["denied_ok"] = denied.wait(20)
    got["cipher"] = str(hive.cipher)
    got["hub_node_id"] = getattr(hive, "node_id", None)
    return got


def listen(req: dict) -> dict:
    hive = _connected(req)
    seen: list = []
    hive.on_mycroft("speak", lambda m: seen.append(m.data))
    print(json.dumps({"ready": True}), flush=True)
    deadline = time.monotonic() + req.get("seconds", 60)
    while time.monotonic() < deadline and not os.path.exists(req["stop_file"]):
        time.sleep(0.05)
    time.sleep(0.5)
    return {"speak_seen": seen}


def refused(req: dict) -> dict:
    hive = _client(req)
    threading.Thread(target=hive.connect, args=(FakeBus(),), daemon=True).start()
    deadline = time.monotonic() + req.get("seconds", 20)
    while time.monotonic() < deadline and not CLOSE_CODES:
        time.sleep(0.05)
    return {"close_codes": list(CLOSE_CODES), "handshake": hive.handshake_event.is_set()}


def main() -> None:
    req = json.loads(sys.argv[1])
    result = {"chat": chat, "listen": listen, "refused": refused}[req["mode"]](req)
    print(json.dumps(result), flush=True)
    os._exit(0)


if __name__ == "__main__":
    main()
