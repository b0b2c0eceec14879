"""Drive the released HiveMindHTTPClient (hivemind-bus-client 0.4.x) against a hub.

Runs inside the interop virtualenv, never in the workspace environment.
Usage: python http_satellite.py '<json request>'; prints one JSON line of results.

The client is used unchanged. Two observers record what it does without
altering it: every HTTP exchange (path, status, the hub's JSON answer; never
the request body, which holds key material) and the local OVOS bus handed to
``connect``, on which the client injects every BUS message it receives.

Modes:
  chat:    connect, send one utterance, wait for the ``speak`` reply; report
           how often the ``on_mycroft`` handler and the local bus saw it.
  dispatch: no hub at all: bind the client's protocol to a local bus the way
           ``connect`` does, hand ``on_message`` one cleartext BUS frame and
           report how often the handler and the local bus saw it.
  refused: connect with (presumably) a wrong password in a background thread;
           report whether the handshake completed and what the hub answered.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time

import requests
from hivemind_bus_client.http_client import HiveMindHTTPClient
from hivemind_bus_client.message import HiveMessage, HiveMessageType
from hivemind_bus_client.protocol import HiveMindSlaveProtocol
from ovos_bus_client.message import Message
from ovos_utils.fakebus import FakeBus

logging.disable(logging.CRITICAL)

EXCHANGES: list = []
_send = requests.sessions.Session.send


def _noting_send(self, request, **kwargs):
    """Note each request's path and the hub's answer (status and JSON body)."""
    response = _send(self, request, **kwargs)
    try:
        body = response.json()
    except ValueError:
        body = None
    path = request.path_url.split("?", 1)[0]
    EXCHANGES.append({"path": path, "status": response.status_code, "body": body})
    return response


requests.sessions.Session.send = _noting_send


def _client(req: dict) -> HiveMindHTTPClient:
    return HiveMindHTTPClient(
        key=req["key"],
        password=req["password"],
        host="http://127.0.0.1",
        port=req["port"],
        useragent=req.get("useragent", "InteropHttpSat"),
    )


def _answers() -> list:
    """The hub's answers to everything but the polls."""
    return [e for e in EXCHANGES if not e["path"].startswith("/get_")]


def chat(req: dict) -> dict:
    local_bus = FakeBus()
    local_speak: list = []
    local_bus.on("speak", lambda m: local_speak.append(m.data))
    hive = _client(req)
    connected = hive.connect(local_bus)
    got: dict = {"connect": connected, "handshake": hive.handshake_event.is_set()}
    handled: list = []
    reply = threading.Event()

    def on_speak(message):
        handled.append(message.data)
        reply.set()

    hive.on_mycroft("speak", on_speak)
    utterance = Message(req["msg_type"], {"utterances": [req["utterance"]], "lang": "en-US"})
    sent = hive.emit(HiveMessage(HiveMessageType.BUS, payload=utterance))
    got["emit"] = sent.json()
    got["reply_ok"] = reply.wait(req.get("seconds", 20))
    time.sleep(2.5)  # two more poll rounds: a repeated delivery would show up
    got["handled"] = handled
    got["local_bus_speak"] = local_speak
    got["poller_alive"] = hive.is_alive()
    got["answers"] = _answers()
    got["poll_errors"] = [
        e for e in EXCHANGES if isinstance(e["body"], dict) and "error" in e["body"]
    ]
    return got


def dispatch(req: dict) -> dict:
    local_bus = FakeBus()
    local_speak: list = []
    local_bus.on("speak", lambda m: local_speak.append(m.data))
    hive = _client(req)
    hive.protocol = HiveMindSlaveProtocol(hive, site_id="unknown", identity=hive.identity)
    hive.protocol.bind(local_bus)
    handled: list = []
    hive.on_mycroft("speak", lambda m: handled.append(m.data))
    frame = HiveMessage(HiveMessageType.BUS, payload=Message("speak", {"utterance": "once"}))
    hive.on_message(frame.serialize())
    time.sleep(0.2)
    return {"handled": handled, "local_bus_speak": local_speak}


def refused(req: dict) -> dict:
    hive = _client(req)
    threading.Thread(target=hive.connect, args=(FakeBus(),), daemon=True).start()
    deadline = time.monotonic() + req.get("seconds", 8)
    while time.monotonic() < deadline and not hive.handshake_event.is_set():
        time.sleep(0.05)
    return {"handshake": hive.handshake_event.is_set(), "answers": _answers()}


def main() -> None:
    req = json.loads(sys.argv[1])
    result = {"chat": chat, "dispatch": dispatch, "refused": refused}[req["mode"]](req)
    print(json.dumps(result), flush=True)
    os._exit(0)


if __name__ == "__main__":
    main()
