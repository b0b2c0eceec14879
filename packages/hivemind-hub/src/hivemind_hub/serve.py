"""Start the hub: ``serve_hub`` (trio, for tests and embedding) and ``run_hub`` (blocking).

``serve_hub(config)`` opens the client store, loads the hub identity from the
data directory, builds the policy chain, the agent and the binary hook, and
serves the websocket transport (``serve_hive``: wsproto on trio) plus, when
``network_protocol`` names ``hivemind-http-plugin``, the HTTP polling
transport (hypercorn + Starlette). It reports a ``ServingHub`` (bound ports
and the running ``Hub``) through ``task_status``, so tests start it with
``await nursery.start(serve_hub, config)`` on port 0.
"""

from __future__ import annotations

import contextlib
import logging
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio
from hivemind_proto.trio import ChannelLimits, ServerLimits, SlowConsumerPolicy, serve_hive

from ._hub import Hub
from ._tls import ensure_certificate, server_ssl_context
from ._upstream import run_upstream
from .agents import Agent, load_agent
from .binary import BinaryHandler, load_binary_handler
from .config import HTTP_PLUGIN, HubConfig, data_dir
from .identity import load_identity
from .policy import build_policy_chain
from .psk import PskCache
from .store import ClientStore, open_store

__all__ = ["ServingHub", "channel_limits", "run_hub", "serve_hub"]

log = logging.getLogger("hivemind_hub.serve")


@dataclass(frozen=True)
class ServingHub:
    """A hub that is listening.

    Attributes:
        port: The websocket port.
        http_port: The HTTP polling port, or None when that transport is off.
        hub: The running hub (routing core, live connections, agent).
    """

    port: int
    http_port: int | None
    hub: Hub


def channel_limits(config: HubConfig) -> ChannelLimits:
    """Per-connection limits from ``config.limits``."""
    lim = config.limits
    return ChannelLimits(
        outbound_queue=lim.outbound_queue_size,
        handshake_timeout=lim.handshake_timeout,
        frames_per_second=lim.rate_limit_messages_per_second,
        burst=lim.rate_limit_burst,
        slow_consumer=SlowConsumerPolicy(lim.slow_consumer),
    )


def _ssl_context(config: HubConfig, data: Path) -> ssl.SSLContext | None:
    if not config.listen.ssl:
        return None
    cert_dir = Path(os.path.expanduser(config.listen.cert_dir))
    return server_ssl_context(cert_dir, config.listen.cert_name)


async def serve_hub(
    config: HubConfig,
    *,
    data: Path | None = None,
    store: ClientStore | None = None,
    agent: Agent | None = None,
    binary: BinaryHandler | None = None,
    site_id: str = "hub",
    psk_cache: PskCache | None = None,
    task_status: trio.TaskStatus[ServingHub] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the hub until cancelled.

    Args:
        config: The hub configuration (``config.listen`` gives host and port).
        data: The data directory holding the hub identity (default XDG data dir).
        store: An open client store (default: open ``config.database``).
        agent: The agent (default: ``config.agent_protocol``).
        binary: The binary hook (default: ``config.binary_protocol``).
        site_id: This hub's site id.
        psk_cache: Where Noise PSKs are cached (default: a fresh argon2id cache).
        task_status: Receives a ``ServingHub`` once listening.
    """
    data = data or data_dir()
    own_store = store is None
    store = store if store is not None else open_store(config.database)
    try:
        hub = Hub(
            config,
            store,
            load_identity(data, site_id=site_id),
            build_policy_chain(config.policy_chain),
            agent or load_agent(config.agent_protocol),
            binary or load_binary_handler(config.binary_protocol),
            psk_cache=psk_cache,
        )
        await _serve(hub, config, data, task_status)
    finally:
        if own_store:
            close = getattr(store, "close", None)
            if close is not None:
                close()


async def _serve(
    hub: Hub, config: HubConfig, data: Path, task_status: trio.TaskStatus[ServingHub]
) -> None:
    limits = ServerLimits(
        max_message_bytes=config.limits.max_frame_bytes, channel=channel_limits(config)
    )
    async with trio.open_nursery() as nursery:
        hub.bind(nursery)
        await nursery.start(hub.agent.run, hub)
        port = await nursery.start(
            lambda task_status: serve_hive(
                hub.authenticate,
                hub.serve_channel,
                config.listen.host,
                config.listen.port,
                rng=os.urandom,
                ssl_context=_ssl_context(config, data),
                limits=limits,
                psk_deriver=hub.derive_psk,
                task_status=task_status,
            )
        )
        http_port = await _maybe_http(nursery, hub, config)
        if config.upstream.enabled:
            nursery.start_soon(_upstream_task, hub, config)
        log.info("hub %s listening on port %d", hub.identity.node_id, port)
        task_status.started(ServingHub(port, http_port, hub))


async def _upstream_task(hub: Hub, config: HubConfig) -> None:
    await run_upstream(hub, config.upstream, require_noise=config.upstream.require_noise)


async def _maybe_http(nursery: trio.Nursery, hub: Hub, config: HubConfig) -> int | None:
    options: Any = config.network_protocol.get(HTTP_PLUGIN)
    if not isinstance(options, dict):
        return None
    from ._http import serve_http

    host = str(options.get("host") or config.listen.host)
    port = int(options.get("port", 5679))
    tls = await trio.to_thread.run_sync(_http_tls, options, config) if options.get("ssl") else None
    bound: int = await nursery.start(
        lambda task_status: serve_http(hub, host, port, tls=tls, task_status=task_status)
    )
    return bound


def _http_tls(options: dict[str, Any], config: HubConfig) -> tuple[Path, Path]:
    cert_dir = Path(os.path.expanduser(str(options.get("cert_dir") or config.listen.cert_dir)))
    return ensure_certificate(cert_dir, str(options.get("cert_name") or config.listen.cert_name))


def run_hub(config: HubConfig, *, data: Path | None = None) -> None:
    """Run the hub in the foreground until interrupted (``hmctl hub listen``)."""
    logging.basicConfig(
        level=os.environ.get("HIVEMIND_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            serving: ServingHub = await nursery.start(
                lambda task_status: serve_hub(config, data=data, task_status=task_status)
            )
            print(f"hivemind hub listening on {config.listen.host}:{serving.port}", flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        trio.run(main)
