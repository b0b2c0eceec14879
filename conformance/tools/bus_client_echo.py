"""The client echo contract on the released hivemind-bus-client (runs in the interop venv).

Usage: python bus_client_echo.py URL ACCESS_KEY PASSWORD

Connects with the released client, unchanged, and echoes every
``hive.conformance.echo`` BUS message it receives back to the hub; exits on
``hive.conformance.close``.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from urllib.parse import urlsplit

from hivemind_bus_client import HiveMessageBusClient
from hivemind_bus_client.message import HiveMessage, HiveMessageType
from ovos_utils.fakebus import FakeBus

logging.disable(logging.CRITICAL)


def main() -> None:
    url, key, password = sys.argv[1:4]
    parts = urlsplit(url)
    hive = HiveMessageBusClient(
        key=key,
        password=password,
        host=f"{parts.scheme}://{parts.hostname}",
        port=parts.port,
        useragent="ReleasedBusClient",
        self_signed=False,
    )
    done = threading.Event()

    def echo(message):
        hive.emit(HiveMessage(HiveMessageType.BUS, payload=message))

    hive.on_mycroft("hive.conformance.echo", echo)
    hive.on_mycroft("hive.conformance.close", lambda message: done.set())
    threading.Thread(target=hive.connect, args=(FakeBus(),), daemon=True).start()
    done.wait(60)
    os._exit(0)


if __name__ == "__main__":
    main()
