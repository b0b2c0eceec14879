"""The released hivemind-bus-client asks a room through the hub-side room mode.

Runs inside the interop virtualenv (hivemind-bus-client 0.4.4), never in the
workspace environment. Usage: python legacy_room_satellite.py '<json request>'
with ``port``, ``key``, ``password`` and ``question``; prints one JSON line:
the ``hivemind.room.legacy.answer`` data, or ``{"timeout": true}``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading

from hivemind_bus_client import HiveMessageBusClient
from hivemind_bus_client.message import HiveMessage, HiveMessageType
from ovos_bus_client.message import Message
from ovos_utils.fakebus import FakeBus

logging.disable(logging.CRITICAL)


def main() -> None:
    req = json.loads(sys.argv[1])
    hive = HiveMessageBusClient(
        key=req["key"],
        password=req["password"],
        host="ws://127.0.0.1",
        port=req["port"],
        useragent="ReleasedSatellite",
        self_signed=False,
    )
    got: dict = {}
    answered = threading.Event()

    def on_answer(message: Message) -> None:
        got.update(message.data)
        answered.set()

    # Bind before connecting: the released client may deliver as soon as it connects.
    hive.on_mycroft("hivemind.room.legacy.answer", on_answer)
    hive.connect(FakeBus())
    ask = Message("hivemind.room.legacy.ask", {"question": req["question"]})
    hive.emit(HiveMessage(HiveMessageType.BUS, payload=ask))
    if not answered.wait(req.get("seconds", 120)):
        got = {"timeout": True}
    print(json.dumps(got), flush=True)
    os._exit(0)


if __name__ == "__main__":
    main()
