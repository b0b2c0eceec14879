"""The link to a parent hub: this hub is one of the parent's satellites.

Theory of operation: ``run_upstream`` keeps one ``open_hive`` connection to
the parent (reconnecting with a capped backoff; a 1008 refusal is logged and
retried slowly, since an operator may fix the credentials). Messages the
routing core sends up go through a bounded channel (``Hub.upstream_send``;
full means dropped and counted); messages from the parent go to
``Hub.from_upstream``. We always offer Noise with the hub's static key, so
two of our hubs agree on profile N; ``require_noise`` refuses a parent that
only speaks the legacy wire.
"""

from __future__ import annotations

import logging

import trio
from hivemind_proto import HiveMessage, NoiseIdentity
from hivemind_proto.trio import (
    ChannelLimits,
    HiveClient,
    HiveRefused,
    HiveUnavailable,
    Reconnect,
    SatelliteIdentity,
    open_hive,
)

from ._hub import Hub
from .config import UpstreamConfig

__all__ = ["run_upstream", "upstream_url"]

log = logging.getLogger("hivemind_hub.upstream")
QUEUE = 256


def upstream_url(cfg: UpstreamConfig) -> str:
    """Return the parent's websocket URL."""
    host = cfg.host or "127.0.0.1"
    if "://" in host:
        return f"{host}:{cfg.port}"
    return f"{'wss' if cfg.ssl else 'ws'}://{host}:{cfg.port}"


async def run_upstream(
    hub: Hub,
    cfg: UpstreamConfig,
    *,
    require_noise: bool = False,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Keep the hub linked to its parent until cancelled."""
    if not cfg.key or not cfg.password:
        raise ValueError("upstream needs 'key' and 'password'")
    identity = SatelliteIdentity(
        access_key=cfg.key,
        password=cfg.password,
        useragent=f"HiveMindHub-{hub.identity.node_id}",
        site_id=hub.identity.site_id,
        noise=NoiseIdentity(hub.identity.noise),
        require_noise=require_noise,
    )
    task_status.started()
    delay = 0.2
    while True:
        try:
            async with open_hive(
                upstream_url(cfg),
                identity,
                limits=ChannelLimits(handshake_timeout=30.0),
                reconnect=Reconnect(initial=0.2, maximum=5.0, attempts=3),
            ) as client:
                delay = 0.2
                await _linked(hub, client)
        except HiveRefused:
            log.warning("the parent hub refused our credentials")
            delay = 30.0
        except HiveUnavailable:
            log.info("parent hub unavailable; retrying")
        finally:
            hub.router.set_upstream(None)
            hub.upstream_send = None
            hub.upstream_handshake = None
        await trio.sleep(delay)
        delay = min(delay * 2, 10.0)


async def _linked(hub: Hub, client: HiveClient) -> None:
    parent = str(client.hub_hello.get("node_id") or "parent")
    send, recv = trio.open_memory_channel[HiveMessage](QUEUE)
    hub.upstream_send = send
    hub.upstream_handshake = client.handshake
    hub.router.set_upstream(f"upstream::{parent}")
    log.info("linked to the parent hub")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_pump_up, client, recv)
        while True:
            hub.from_upstream(await client.receive())


async def _pump_up(client: HiveClient, recv: trio.MemoryReceiveChannel[HiveMessage]) -> None:
    async for message in recv:
        await client.send(message)
