"""An OVOS bus participant for the end-to-end tests and bench/hub (interop virtualenv).

Usage: python bus_responder.py BUS_PORT [UTTERANCE]

Connects to the OVOS message bus given on the command line and answers every
``recognizer_loop:utterance`` with ``speak`` through ``Message.reply``, so the
reply's ``context.destination`` is the asking peer. The reply's utterance is
``UTTERANCE`` ("reply from the bus" by default); a request's ``i`` is echoed
so a load generator can match replies to requests. Prints ``ready`` once
subscribed; exits when stdin closes.
"""

from __future__ import annotations

import logging
import sys

from ovos_bus_client import MessageBusClient
from pyee import EventEmitter

logging.disable(logging.CRITICAL)


def main() -> None:
    port = int(sys.argv[1])
    utterance = sys.argv[2] if len(sys.argv) > 2 else "reply from the bus"
    bus = MessageBusClient(host="127.0.0.1", port=port, emitter=EventEmitter())
    bus.run_in_thread()
    if not bus.connected_event.wait(20):
        print("bus unreachable", flush=True)
        sys.exit(1)

    def answer(message):
        data = {"utterance": utterance}
        if "i" in message.data:
            data["i"] = message.data["i"]
        bus.emit(message.reply("speak", data))

    bus.on("recognizer_loop:utterance", answer)
    print("ready", flush=True)
    sys.stdin.read()
    bus.close()


if __name__ == "__main__":
    main()
