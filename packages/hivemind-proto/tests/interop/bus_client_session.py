"""Run the released HiveMessageBusClient (hivemind-bus-client 0.4.x) against a hub.

Runs inside the interop virtualenv, never in the workspace environment. Usage::

    python bus_client_session.py HOST PORT CASE [CASE ...]

where each CASE is ``ID,MODE,ACCESS_KEY,PASSWORD`` (no commas inside the
first three parts). The cases run one after another, each with a fresh
client: connect with the given credentials and, if the handshake completes,
send one BUS ``recognizer_loop:utterance`` and wait for the hub to send it
back. One JSON verdict per case is printed on its own line::

    {"id", "mode", "handshake": bool, "seconds": float,
     "cipher", "encoding", "binarize",        # what the client settled on
     "frames": ["text" | "binary", ...],      # every inbound websocket message
     "shakes": [sorted keys of each inbound HANDSHAKE payload],
     "hello": the hub HELLO payload or null,
     "sent": the utterance data sent,
     "echo": {"type", "data"} or null,
     "close": {"code", "reason"} or null,     # the close frame the hub sent
     "error": text or null}

MODE ``connect`` calls the released ``connect()`` as is. It starts the
websocket thread before it registers the protocol handlers, so against a hub
that greets at once (ours and hivemind-core both do) the HELLO and the
HANDSHAKE offer usually arrive unhandled; the client then starts the
handshake by itself after five seconds, without binarization. MODE ``bound``
runs the same steps as ``connect()`` with the handlers bound first, which
makes the exchange deterministic and lets the offer (binarize included) be
seen: this is the mode every cipher/encoding case uses.

The client is the released class; the subclass below only records what
arrives (websocket messages, the close frame) before handing it to the
released code, and after a close it lengthens the released reconnect delay
so a refused client does not keep reconnecting while later cases run
(0.4.x reconnects after any close, 1008 included). A refused ``connect()``
never returns, so it runs in a daemon thread, the driver waits with its own
deadlines and ends with ``os._exit`` to leave the client's threads behind.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

HANDSHAKE_DEADLINE = 15.0
ECHO_DEADLINE = 10.0
CLOSE_DEADLINE = 5.0
UTTERANCE = {"utterances": ["what time is it in Zürich? ✓"], "lang": "en-US"}


def _quiet_stdout():
    """Keep library log lines off the verdict channel: fd 1 becomes stderr."""
    reply = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return reply


def _observed_client_class():
    from hivemind_bus_client.client import HiveMessageBusClient

    class ObservedClient(HiveMessageBusClient):
        """The released client; records inbound traffic, changes nothing."""

        def __init__(self, *args, **kwargs):
            self.frames = []
            self.closed = threading.Event()
            self.close_info = None
            super().__init__(*args, **kwargs)

        def on_message(self, *args):
            message = args[-1]
            self.frames.append("binary" if isinstance(message, bytes) else "text")
            super().on_message(*args)

        def on_error(self, *args):
            # websocket-client reports the hub's close frame here first, as an
            # exception carrying the status code; the released handler then
            # sleeps ``retry`` seconds and reconnects in this same thread.
            error = args[-1]
            if self.close_info is None:
                reason = getattr(error, "reason", None)
                if isinstance(reason, bytes):
                    reason = reason.decode("utf-8", "replace")
                self.close_info = {"code": getattr(error, "status_code", None), "reason": reason}
            self.closed.set()
            self.retry = 3600
            super().on_error(*args)

    return ObservedClient


def _wait_any(events, deadline):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if any(e.is_set() for e in events):
            return True
        time.sleep(0.01)
    return False


def _connect_bound(client, bus):
    """``connect()``'s steps, with the protocol bound before the socket opens."""
    from hivemind_bus_client.protocol import HiveMindSlaveProtocol

    client.identity.site_id = "interop"
    client.protocol = HiveMindSlaveProtocol(
        client, shared_bus=client.share_bus, site_id="interop", identity=client.identity
    )
    client.protocol.bind(bus)
    client.run_in_thread()


def run_case(client_class, host, port, case_id, mode, key, password):
    from hivemind_bus_client.message import HiveMessage, HiveMessageType
    from ovos_bus_client import Message
    from ovos_utils.fakebus import FakeBus

    started = time.monotonic()
    verdict = {
        "id": case_id,
        "mode": mode,
        "handshake": False,
        "sent": UTTERANCE,
        "echo": None,
        "error": None,
    }
    client = client_class(
        key=key, password=password, host=f"ws://{host}", port=port, useragent="interop-driver"
    )
    echoed = threading.Event()
    seen = {"hello": None, "shakes": [], "echo": None}

    def on_hello(message):
        if seen["hello"] is None:
            seen["hello"] = message.payload

    def on_shake(message):
        seen["shakes"].append(sorted(message.payload))

    def on_bus(message):
        payload = message.payload
        if payload.msg_type == "recognizer_loop:utterance":
            seen["echo"] = {"type": payload.msg_type, "data": payload.data}
            echoed.set()

    client.on(HiveMessageType.HELLO, on_hello)
    client.on(HiveMessageType.HANDSHAKE, on_shake)
    client.on(HiveMessageType.BUS, on_bus)
    if mode == "connect":
        connector = threading.Thread(
            target=client.connect, kwargs={"bus": FakeBus(), "site_id": "interop"}, daemon=True
        )
        connector.start()
    else:
        _connect_bound(client, FakeBus())
    _wait_any([client.handshake_event, client.closed], HANDSHAKE_DEADLINE)
    if client.handshake_event.is_set() and not client.closed.is_set():
        verdict["handshake"] = True
        try:
            client.emit(
                HiveMessage(
                    HiveMessageType.BUS,
                    payload=Message("recognizer_loop:utterance", dict(UTTERANCE)),
                )
            )
        except Exception as exc:  # reported, not hidden
            verdict["error"] = f"{type(exc).__name__}: {exc}"
        _wait_any([echoed, client.closed], ECHO_DEADLINE)
    else:
        _wait_any([client.closed], CLOSE_DEADLINE)
    verdict.update(
        seconds=round(time.monotonic() - started, 3),
        cipher=str(getattr(client.cipher, "value", client.cipher)),
        encoding=str(getattr(client.json_encoding, "value", client.json_encoding)),
        binarize=bool(getattr(getattr(client, "protocol", None), "binarize", False)),
        frames=list(client.frames),
        shakes=seen["shakes"],
        hello=seen["hello"],
        echo=seen["echo"],
        close=client.close_info,
    )
    if verdict["handshake"]:
        client.close()
    return verdict


def main():
    reply = _quiet_stdout()
    host, port = sys.argv[1], int(sys.argv[2])
    client_class = _observed_client_class()
    for spec in sys.argv[3:]:
        case_id, mode, key, password = spec.split(",", 3)
        try:
            verdict = run_case(client_class, host, port, case_id, mode, key, password)
        except Exception as exc:  # one broken case must not hide the others
            verdict = {"id": case_id, "error": f"{type(exc).__name__}: {exc}"}
        reply.write(json.dumps(verdict) + "\n")
        reply.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
