"""The OVOS message bus agent (compatible with ``hivemind-ovos-agent-plugin``).

Theory of operation: one trio-websocket client connection to the OVOS bus
(``ws://host:port/core``). Messages the hub emits wait in a bounded channel
drained by one writer; every message the bus broadcasts is handed to the
hub, which forwards it only to connections named in ``context.destination``
(the bus also echoes our own emissions back; those name no connection and
are dropped there). When the bus goes away the agent reconnects with a
capped backoff; queued messages wait meanwhile (and are dropped, counted,
once the queue is full).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Awaitable, Mapping
from typing import Any

import trio
from trio_websocket import ConnectionClosed, HandshakeError, open_websocket_url

from ._base import AgentHost

__all__ = ["OVOSBusAgent"]

log = logging.getLogger("hivemind_hub.agents.ovos")


class OVOSBusAgent:
    """Inject into, and listen to, an OVOS message bus.

    Args:
        config: ``{"host", "port", "route" = "/core", "ssl" = false,
            "queue_size" = 1024, "max_message_bytes" = 10 MiB}``.
    """

    name = "hivemind-ovos-agent-plugin"
    answers_queries = True

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        cfg = dict(config or {})
        scheme = "wss" if cfg.get("ssl") else "ws"
        route = str(cfg.get("route") or "/core")
        self.url = f"{scheme}://{cfg.get('host', '127.0.0.1')}:{int(cfg.get('port', 8181))}{route}"
        self.max_message_bytes = int(cfg.get("max_message_bytes", 10 * 1024 * 1024))
        self._send, self._recv = trio.open_memory_channel[str](int(cfg.get("queue_size", 1024)))
        self.connected = trio.Event()
        self.dropped = 0

    def emit(self, message: Mapping[str, Any]) -> bool:
        """Queue ``message`` for the bus; False (and counted) when the queue is full."""
        try:
            self._send.send_nowait(json.dumps(message, ensure_ascii=False))
            return True
        except trio.WouldBlock:
            self.dropped += 1
            log.warning("agent bus queue full; message dropped (%d so far)", self.dropped)
            return False

    async def run(
        self, host: AgentHost, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Stay connected to the bus until cancelled."""
        task_status.started()
        delay = 0.1
        while True:
            try:
                async with open_websocket_url(
                    self.url, connect_timeout=10, max_message_size=self.max_message_bytes
                ) as ws:
                    delay = 0.1
                    self.connected.set()
                    log.info("connected to the agent bus at %s", self.url)
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._until_closed, nursery, self._writer(ws))
                        nursery.start_soon(self._until_closed, nursery, self._reader(ws, host))
            except (OSError, HandshakeError, ConnectionClosed, trio.TooSlowError) as exc:
                log.warning("agent bus unavailable (%s); retrying", type(exc).__name__)
            self.connected = trio.Event()
            await trio.sleep(delay)
            delay = min(delay * 2, 5.0)

    @staticmethod
    async def _until_closed(nursery: trio.Nursery, work: Awaitable[None]) -> None:
        """Run ``work``; when the websocket closes, stop its sibling too."""
        with contextlib.suppress(ConnectionClosed):
            await work
        nursery.cancel_scope.cancel()

    async def _writer(self, ws: Any) -> None:
        while True:
            text = await self._recv.receive()
            await ws.send_message(text)

    async def _reader(self, ws: Any, host: AgentHost) -> None:
        while True:
            raw = await ws.get_message()
            try:
                message = json.loads(raw)
            except ValueError:
                continue
            if isinstance(message, dict):
                host.deliver(message)
