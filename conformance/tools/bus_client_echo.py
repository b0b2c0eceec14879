"""The client echo contract on the released hivemind-bus-client (runs in the interop venv).

Usage: python bus_client_echo.py URL ACCESS_KEY PASSWORD [SITE_ID]

Drives the released client, unchanged, through its public pieces:

* a throwaway XDG tree holds the identity files the client writes;
* the client's protocol handlers are bound *before* the socket opens (the
  released ``connect()`` binds them after starting the socket thread, so the
  hub's opening HELLO and HANDSHAKE can arrive first and be missed);
* every BUS the client injects into its local bus (a direct BUS, or the inner
  BUS of a BROADCAST for its own site) is sent back to the hub; the local bus
  is used rather than the client's handler bus because ``emit`` re-delivers to
  the handler bus, which would make an echo answer itself;
* BUS ``hive.conformance.close`` ends the process (60 s at most).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import threading
from urllib.parse import urlsplit

HOME = tempfile.mkdtemp(prefix="bus-client-echo-")
for _name, _sub in (
    ("XDG_CONFIG_HOME", ".config"),
    ("XDG_DATA_HOME", ".local/share"),
    ("XDG_CACHE_HOME", ".cache"),
    ("XDG_STATE_HOME", ".local/state"),
):
    os.environ[_name] = os.path.join(HOME, _sub)
os.environ["HOME"] = HOME

from hivemind_bus_client import HiveMessageBusClient  # noqa: E402
from hivemind_bus_client.message import HiveMessage, HiveMessageType  # noqa: E402
from hivemind_bus_client.protocol import HiveMindSlaveProtocol  # noqa: E402
from ovos_utils.fakebus import FakeBus  # noqa: E402

logging.disable(logging.CRITICAL)
ECHO = "hive.conformance.echo"
CLOSE = "hive.conformance.close"


def main() -> None:
    url, key, password = sys.argv[1:4]
    site_id = sys.argv[4] if len(sys.argv) > 4 else "released-client-site"
    parts = urlsplit(url)
    hive = HiveMessageBusClient(
        key=key,
        password=password,
        host=f"{parts.scheme}://{parts.hostname}",
        port=parts.port,
        useragent="ReleasedBusClient",
        self_signed=False,
    )
    local_bus = FakeBus()
    done = threading.Event()

    def echo(message: object) -> None:
        hive.emit(HiveMessage(HiveMessageType.BUS, payload=message))

    local_bus.on(ECHO, echo)
    local_bus.on(CLOSE, lambda message: done.set())
    hive.identity.site_id = site_id
    hive.protocol = HiveMindSlaveProtocol(hive, site_id=site_id, identity=hive.identity)
    hive.protocol.bind(local_bus)
    threading.Thread(target=_run, args=(hive,), daemon=True).start()
    done.wait(60)
    shutil.rmtree(HOME, ignore_errors=True)
    os._exit(0)


def _run(hive: HiveMessageBusClient) -> None:
    hive.run_in_thread()
    hive.wait_for_handshake()


if __name__ == "__main__":
    main()
