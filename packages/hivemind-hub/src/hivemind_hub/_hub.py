"""The hub at run time: connections, the client store and the routing core under trio.

Theory of operation
-------------------
``Hub`` owns the routing core (``Router``), the table of live connections
and the agent. Transports (websocket, HTTP polling, the upstream link) call
it: ``authenticate`` when a satellite asks to connect, ``serve_channel`` for
a ready websocket channel, ``attach``/``detach``/``on_message`` for any
other kind of link. Every inbound message is judged against the client record
as it is *now*, so a client deleted, re-keyed or demoted by another process
(the CLI) is closed with 1008 on its next message; changes made through this
process's store close its connections at once (``on_change``). Reading the
store costs a worker thread, so each connection keeps the record it last read
with two freshness marks: the store's ``change_stamp`` (file stats that move
when any process writes; None when unknown, which forces a read) and a
generation counter bumped by every in-process ``on_change``. A message reuses
the kept record only when both marks are unchanged; the stamp is taken
before the read, so a write racing the read is seen by the next message. Outbound work never blocks
the sender: peer links queue with their own slow-consumer policy, the agent
queue is bounded, the upstream queue is bounded.

Nothing here logs message content or credentials: log lines name the peer's
client id and the message type at most.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio
import trio.lowlevel
from hivemind_proto import (
    Authorization,
    Cipher,
    CloseCode,
    HandshakeComplete,
    HiveMessage,
    HubSettings,
    MessageReceived,
    NoiseIdentity,
    ProtocolError,
    TextEncoding,
)
from hivemind_proto.trio import ChannelClosed, HiveChannel

from .agents import Agent
from .binary import BinaryHandler
from .clients import Client
from .config import HubConfig
from .identity import HubIdentity
from .intercom import RsaIntercom
from .policy import PolicyChain
from .psk import PskCache
from .routing import (
    Action,
    BinaryPayload,
    Disconnect,
    EmitToAgent,
    PeerState,
    Router,
    SendToPeer,
    SendUpstream,
)
from .store import ClientChange, ClientStore

__all__ = ["Hub", "LiveLink", "PeerLink"]

log = logging.getLogger("hivemind_hub.hub")

#: JSON-Z85P cannot be decoded by the released stack (spec W13): never offered.
BROKEN_ENCODINGS = frozenset({"JSON-Z85P"})


class PeerLink(Protocol):
    """What the hub needs from one satellite connection, whatever its transport."""

    def send_nowait(self, message: HiveMessage) -> bool:
        """Queue ``message``; False when dropped or closing."""
        ...

    async def aclose(self, code: int, reason: str) -> None:
        """Close the connection with ``code``."""
        ...


@dataclass(slots=True)
class LiveLink:
    """One registered connection."""

    peer: str
    client_id: int
    link: PeerLink
    access_key: str = field(repr=False)
    password: str | None = field(repr=False)
    crypto_key: str | None = field(repr=False)
    is_admin: bool
    useragent: str
    last_touch: float = 0.0
    #: The client record last read for this connection, and its freshness marks.
    record: Client | None = field(default=None, repr=False)
    record_stamp: Hashable | None = field(default=None, repr=False)
    record_generation: int = -1


def _session_of(hello: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    session = hello.get("session")
    session = dict(session) if isinstance(session, Mapping) else {}
    site = hello.get("site_id") if isinstance(hello.get("site_id"), str) else None
    session.setdefault("session_id", "default")
    if site and "site_id" not in session:
        session["site_id"] = site
    return session, site


class Hub:
    """A running hub: routing core, live connections, agent and store.

    Args:
        config: The hub configuration.
        store: The client database.
        identity: This hub's identity.
        chain: The policy admission chain.
        agent: The agent protocol.
        binary: The binary protocol hook.
        clock: Wall clock (Unix seconds).
        psk_cache: Noise PSKs derived once per password and node id.
    """

    def __init__(
        self,
        config: HubConfig,
        store: ClientStore,
        identity: HubIdentity,
        chain: PolicyChain,
        agent: Agent,
        binary: BinaryHandler,
        *,
        clock: Callable[[], float] = time.time,
        psk_cache: PskCache | None = None,
    ) -> None:
        self.config = config
        self.psk_cache = psk_cache if psk_cache is not None else PskCache()
        self.store = store
        self.identity = identity
        self.agent = agent
        self.binary = binary
        self.clock = clock
        self.router = Router(
            node_id=identity.node_id,
            public_key=identity.public_pem,
            site_id=identity.site_id,
            chain=chain,
            agent_answers_queries=agent.answers_queries,
            ping_flood_interval=config.ping_flood_interval,
            intercom=RsaIntercom.from_private_pem(identity.rsa_private_pem),
        )
        self.live: dict[str, LiveLink] = {}
        self.by_client: dict[int, set[str]] = {}
        self.upstream_send: trio.MemorySendChannel[HiveMessage] | None = None
        #: The parent link's handshake (profile, cipher) while linked.
        self.upstream_handshake: HandshakeComplete | None = None
        self.dropped_upstream = 0
        self._nursery: trio.Nursery | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        #: Bumped by every change this process makes to the store.
        self._generation = 0
        self._generation_lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------

    def bind(self, nursery: trio.Nursery) -> None:
        """Attach to the nursery that runs background work (closing links, binary)."""
        self._nursery = nursery
        self._token = trio.lowlevel.current_trio_token()
        on_change = getattr(self.store, "on_change", None)
        if on_change is not None:
            on_change(self._on_store_change)

    def derive_psk(self, password: str, node_id: str) -> bytes:
        """The Noise PSK deriver given to connections (cached; blocking on a miss)."""
        return self.psk_cache.derive(password, node_id)

    def _on_store_change(self, change: ClientChange) -> None:
        with self._generation_lock:
            self._generation += 1
        before, after = change.before, change.after
        if before is not None and (after is None or after.password != before.password):
            self.psk_cache.forget(before.password, self.identity.node_id)
        if not change.revokes_access or self._token is None:
            return
        with contextlib.suppress(trio.RunFinishedError):
            self._token.run_sync_soon(self._revoke, change.client_id)

    def _revoke(self, client_id: int) -> None:
        for peer in list(self.by_client.get(client_id, ())):
            live = self.live.get(peer)
            if live is not None:
                log.info("closing a connection of client %d: access revoked", client_id)
                self.detach(live)
                self._spawn_close(live.link, CloseCode.POLICY_VIOLATION, "access revoked")

    def _spawn_close(self, link: PeerLink, code: int, reason: str) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(link.aclose, code, reason)

    # -- admission --------------------------------------------------------------

    async def lookup(self, access_key: str) -> Client | None:
        """Read the current record for ``access_key`` (None if unknown or on error)."""
        try:
            return await trio.to_thread.run_sync(self.store.get_by_access_key, access_key)
        except Exception as exc:
            log.error("client lookup failed: %s", type(exc).__name__)
            return None

    def _store_stamp(self) -> Hashable | None:
        stamp_of = getattr(self.store, "change_stamp", None)
        if stamp_of is None:
            return None
        try:
            stamp: Hashable | None = stamp_of()
        except Exception:
            return None
        return stamp

    def _read_stamped(self, access_key: str) -> tuple[Client | None, Hashable | None]:
        stamp = self._store_stamp()
        return self.store.get_by_access_key(access_key), stamp

    async def current_record(self, live: LiveLink) -> Client | None:
        """The record of ``live``'s client as it is now (None if gone or on error).

        Reuses the record read for an earlier message while the store's
        change stamp and this process's change generation are unchanged.
        """
        if live.record is not None and live.record_generation == self._generation:
            stamp = self._store_stamp()
            if stamp is not None and stamp == live.record_stamp:
                return live.record
        generation = self._generation
        try:
            client, stamp = await trio.to_thread.run_sync(self._read_stamped, live.access_key)
        except Exception as exc:
            log.error("client lookup failed: %s", type(exc).__name__)
            client, stamp = None, None
        live.record, live.record_stamp, live.record_generation = client, stamp, generation
        return client

    async def authenticate(self, auth: Authorization) -> HubSettings | None:
        """Return the handshake settings for a connecting satellite, or None to refuse."""
        client = await self.lookup(auth.access_key)
        if client is None:
            log.info("refused a connection: unknown access key")
            self.agent.emit(
                {
                    "type": "hive.client.connection.error",
                    "data": {"error": "invalid access key", "peer": auth.useragent},
                    "context": {"source": auth.useragent},
                }
            )
            return None
        return self.settings_for(client, auth.useragent)

    def settings_for(self, client: Client, useragent: str) -> HubSettings | None:
        """Build the per-connection handshake settings for ``client``."""
        if not client.password and not client.crypto_key:
            return None
        peer = f"{useragent}::{client.client_id}::{client.name}::default"
        noise = NoiseIdentity(self.identity.noise) if client.password else None
        return HubSettings(
            hello=self.identity.hello(peer),
            password=client.password,
            crypto_key=client.crypto_key,
            allowed_ciphers=tuple(Cipher(c) for c in self.config.allowed_ciphers),
            allowed_encodings=tuple(
                TextEncoding(e) for e in self.config.allowed_encodings if e not in BROKEN_ENCODINGS
            ),
            binarize=self.config.binarize,
            noise=noise,
            max_frame_bytes=self.config.limits.max_frame_bytes,
        )

    # -- connections ------------------------------------------------------------

    async def serve_channel(self, channel: HiveChannel, auth: Authorization) -> None:
        """Run one ready websocket connection until it closes."""
        live = await self.attach(channel, auth, channel.hello.payload if channel.hello else {})
        # What the hub needs of the HELLO now lives in the router's PeerState;
        # an idle connection should not keep the whole payload.
        channel.hello = None
        if live is None:
            return
        try:
            while True:
                event = await channel.receive_event()
                if isinstance(event, MessageReceived):
                    await self.on_message(live, event.message)
                del event  # nothing of the last message stays while idle
        except ChannelClosed:
            pass
        finally:
            self.detach(live)

    async def attach(
        self, link: PeerLink, auth: Authorization, hello: Mapping[str, Any]
    ) -> LiveLink | None:
        """Register a connection that completed its handshake; None if refused."""
        client = await self.lookup(auth.access_key)
        if client is None:
            await link.aclose(CloseCode.POLICY_VIOLATION, "invalid access key")
            return None
        peers = self.by_client.setdefault(client.client_id, set())
        if len(peers) >= self.config.limits.max_connections_per_credential:
            log.info("refused a connection of client %d: too many", client.client_id)
            await link.aclose(CloseCode.TRY_AGAIN_LATER, "too many connections")
            return None
        session, site = _session_of(hello)
        peer = f"{auth.useragent}::{client.client_id}::{client.name}::{session['session_id']}"
        old = self.live.get(peer)
        if old is not None:
            self.detach(old)
            self._spawn_close(old.link, CloseCode.NORMAL, "replaced by a new connection")
        pubkey = hello.get("pubkey") if isinstance(hello.get("pubkey"), str) else None
        live = LiveLink(
            peer=peer,
            client_id=client.client_id,
            link=link,
            access_key=auth.access_key,
            password=client.password,
            crypto_key=client.crypto_key,
            is_admin=client.is_admin,
            useragent=auth.useragent,
        )
        self.live[peer] = live
        peers.add(peer)
        self.router.register(PeerState(peer, client.client_id, session, site, pubkey))
        log.info("client %d connected", client.client_id)
        self.agent.emit(
            {
                "type": "hive.client.connect",
                "data": {"key": auth.access_key, "session_id": session["session_id"]},
                "context": {"source": peer},
            }
        )
        return live

    def detach(self, live: LiveLink) -> None:
        """Unregister a connection (idempotent)."""
        if self.live.get(live.peer) is not live:
            return
        del self.live[live.peer]
        self.by_client.get(live.client_id, set()).discard(live.peer)
        session = self.router.peers.get(live.peer)
        self.router.unregister(live.peer)
        log.info("client %d disconnected", live.client_id)
        self.agent.emit(
            {
                "type": "hive.client.disconnect",
                "data": {"key": live.access_key},
                "context": {
                    "source": live.peer,
                    "session": dict(session.session) if session else {},
                },
            }
        )

    def _still_valid(self, live: LiveLink, client: Client | None) -> bool:
        return (
            client is not None
            and client.client_id == live.client_id
            and client.password == live.password
            and client.crypto_key == live.crypto_key
            and not (live.is_admin and not client.is_admin)
        )

    async def on_message(self, live: LiveLink, message: HiveMessage) -> None:
        """Judge and route one inbound message of a registered connection."""
        client = await self.current_record(live)
        if not self._still_valid(live, client):
            log.info("closing a connection of client %d: access revoked", live.client_id)
            self.detach(live)
            await live.link.aclose(CloseCode.POLICY_VIOLATION, "access revoked")
            return
        assert client is not None
        now = self.clock()
        self._touch(live, now)
        log.debug("client %d sent %s", live.client_id, message.msg_type.value)
        try:
            actions = self.router.from_peer(live.peer, message, client, now)
        except ProtocolError as exc:
            # A message the envelope accepted but routing cannot use (for
            # example a BUS payload whose data is not an object): drop it.
            log.info(
                "dropped a malformed message of client %d: %s", live.client_id, type(exc).__name__
            )
            return
        self.apply(actions)

    def _touch(self, live: LiveLink, now: float) -> None:
        if now - live.last_touch < self.config.last_seen_update_interval:
            return
        live.last_touch = now
        if self._nursery is not None:
            self._nursery.start_soon(self._touch_store, live.client_id, now)

    async def _touch_store(self, client_id: int, now: float) -> None:
        try:
            await trio.to_thread.run_sync(self.store.touch, client_id, now)
        except Exception as exc:
            log.warning("could not record last_seen: %s", type(exc).__name__)

    # -- outbound ---------------------------------------------------------------

    def deliver(self, message: Mapping[str, Any]) -> None:
        """Route a message the agent produced (the agent calls this; never raises)."""
        try:
            actions = self.router.from_agent(message)
        except ProtocolError as exc:
            log.info("dropped a malformed agent message: %s", type(exc).__name__)
            return
        self.apply(actions)

    def from_upstream(self, message: HiveMessage) -> None:
        """Route a message received from the parent hub."""
        self.apply(self.router.from_upstream(message, self.clock()))

    def apply(self, actions: list[Action]) -> None:
        """Carry out routing actions without blocking."""
        for action in actions:
            match action:
                case SendToPeer(peer=peer, message=message):
                    self._send_to(peer, message)
                case SendUpstream(message=message):
                    self._send_upstream(message)
                case EmitToAgent(message=message):
                    self.agent.emit(message)
                case Disconnect(peer=peer, code=code, reason=reason):
                    live = self.live.get(peer)
                    if live is not None:
                        log.info("disconnecting client %d: %s", live.client_id, reason)
                        self.detach(live)
                        self._spawn_close(live.link, code, reason)
                case BinaryPayload():
                    if self._nursery is not None:
                        self._nursery.start_soon(self._binary, action)
                case _:
                    pass

    def _send_to(self, peer: str, message: HiveMessage) -> None:
        live = self.live.get(peer)
        if live is None:
            return
        try:
            queued = live.link.send_nowait(message)
        except ProtocolError as exc:
            log.info("cannot send to client %d: %s", live.client_id, type(exc).__name__)
            return
        if not queued:
            log.info("a message to client %d was not queued", live.client_id)

    def _send_upstream(self, message: HiveMessage) -> None:
        if self.upstream_send is None:
            return
        try:
            self.upstream_send.send_nowait(message)
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            self.dropped_upstream += 1

    async def _binary(self, action: BinaryPayload) -> None:
        try:
            await self.binary.handle(action.peer, action.bin_type, action.payload, action.metadata)
        except Exception as exc:
            log.warning("binary handler failed: %s", type(exc).__name__)
