"""Run ``hivemind_proto.Connection`` over websockets with trio.

The only part of ``hivemind_proto`` that imports trio. Satellites use
``open_hive`` (trio-websocket); hubs use ``serve_hive`` (its own websocket
server side on trio streams, built for many idle connections) or wrap an accepted
ASGI websocket in ``AsgiWebSocketTransport`` and call ``run_hub_session``.
"""

from __future__ import annotations

from ._channel import (
    HANDSHAKE_THREADS,
    ChannelClosed,
    ChannelLimits,
    HiveChannel,
    SlowConsumerPolicy,
)
from ._client import (
    HiveClient,
    HiveRefused,
    HiveUnavailable,
    Reconnect,
    SatelliteIdentity,
    open_hive,
)
from ._owner import ConnectionOwner
from ._server import ServerLimits, run_hub_session, serve_hive
from ._transport import (
    AsgiWebSocketTransport,
    FrameTransport,
    TransportClosed,
    TrioWebSocketTransport,
)

__all__ = [
    "HANDSHAKE_THREADS",
    "AsgiWebSocketTransport",
    "ChannelClosed",
    "ChannelLimits",
    "ConnectionOwner",
    "FrameTransport",
    "HiveChannel",
    "HiveClient",
    "HiveRefused",
    "HiveUnavailable",
    "Reconnect",
    "SatelliteIdentity",
    "ServerLimits",
    "SlowConsumerPolicy",
    "TransportClosed",
    "TrioWebSocketTransport",
    "open_hive",
    "run_hub_session",
    "serve_hive",
]
