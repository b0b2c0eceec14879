"""The hub echo contract (docs/spec §9.1) as an OVOS bus participant (interop venv).

Usage: python bus_echo_responder.py BUS_PORT

A hub whose agent is an OVOS message bus (hivemind-core's OVOS agent plugin)
meets the contract with this process on that bus: every ``hive.conformance.*``
message (other than a ``.reply``) is answered with ``<type>.reply`` through
``Message.reply``, so ``context.destination`` names the asking peer, with
``data`` = ``{"data": <request data>, "context": <context seen on the bus>}``.
Prints ``ready`` once subscribed; exits when stdin closes.
"""

from __future__ import annotations

import logging
import sys

from ovos_bus_client import MessageBusClient
from pyee import EventEmitter

logging.disable(logging.CRITICAL)
PREFIX = "hive.conformance."


def main() -> None:
    bus = MessageBusClient(host="127.0.0.1", port=int(sys.argv[1]), emitter=EventEmitter())
    bus.run_in_thread()
    if not bus.connected_event.wait(20):
        print("bus unreachable", flush=True)
        sys.exit(1)

    def answer(raw: str) -> None:
        from ovos_bus_client.message import Message

        message = Message.deserialize(raw)
        kind = message.msg_type
        if not kind.startswith(PREFIX) or kind.endswith(".reply"):
            return
        data = {"data": message.data, "context": dict(message.context)}
        bus.emit(message.reply(kind + ".reply", data))

    bus.on("message", answer)
    print("ready", flush=True)
    sys.stdin.read()
    bus.close()


if __name__ == "__main__":
    main()
