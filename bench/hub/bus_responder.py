"""An OVOS bus participant for the hub benchmark (runs in the interop virtualenv).

Answers every ``recognizer_loop:utterance`` on the OVOS message bus given on
the command line with ``speak`` through ``Message.reply`` (so the reply's
``context.destination`` is the asking peer), echoing the request's ``i`` so
the load generator can match replies to requests. Prints ``ready`` once
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
    bus = MessageBusClient(host="127.0.0.1", port=port, emitter=EventEmitter())
    bus.run_in_thread()
    if not bus.connected_event.wait(20):
        print("bus unreachable", flush=True)
        sys.exit(1)

    def answer(message):
        data = {"utterance": "bench reply", "i": message.data.get("i")}
        bus.emit(message.reply("speak", data))

    bus.on("recognizer_loop:utterance", answer)
    print("ready", flush=True)
    sys.stdin.read()
    bus.close()


if __name__ == "__main__":
    main()
