"""The reference hub: ``hivemind_proto.trio.serve_hive`` plus the hub echo contract.

It is the target the suite's self-tests grade (every hub case must PASS or be
INFO/SKIP against it) and what ``make conformance`` runs against. It keeps a
routing table of registered sessions, admits BUS messages through a
deny-by-default type ACL (``hive.policy.denied`` on refusal), kicks clients
that send wrappers they may not send (close 1008), floods PING once per
``flood_id``, relays BROADCAST/PROPAGATE to the other sessions, relays an
INTERCOM to its addressee only when its signature verifies against the
sender's HELLO key, and runs the
echo agent of docs/spec §9.1: every injected BUS whose type starts with
``hive.conformance.`` (and is not itself a reply) is answered with
``<type>.reply`` carrying ``{"data": <request data>, "context": <context the
agent saw>}`` to the sender only.

The hook methods (``admit``, ``agent``, ``deliver``, ...) are deliberately
small so the self-tests can build broken variants by overriding one of them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, final

import trio
from hivemind_proto import (
    Authorization,
    CloseCode,
    HiveMessage,
    HubSettings,
    MessageReceived,
    MessageType,
    NoiseIdentity,
    StaticKeypair,
    bus_message,
    derive_psk,
)
from hivemind_proto.trio import (
    ChannelClosed,
    ChannelLimits,
    HiveChannel,
    ServerLimits,
    serve_hive,
)

from . import _rsa

CONFORMANCE_PREFIX: Final = "hive.conformance."
FLOOD_MEMORY: Final = 1000


@final
@dataclass(frozen=True, slots=True)
class ClientRecord:
    """One client of the reference hub."""

    client_id: int
    password: str = field(repr=False)
    name: str = "conformance"
    is_admin: bool = False
    allowed_types: frozenset[str] = frozenset({"hive.conformance.echo"})
    can_broadcast: bool = True
    can_propagate: bool = True
    can_escalate: bool = True


@dataclass(slots=True)
class ReferenceHubConfig:
    """How the reference hub runs.

    Args:
        clients: access key to record.
        node_id: the hub's HELLO ``node_id``.
        site_id: the hub's own site id (site-targeted wrappers).
        binarize: offer WIRE-1 frames.
        noise: offer the v3 Noise handshake.
        handshake_timeout: seconds until a silent connection is closed.
        max_frame_bytes: largest websocket message.
        psk_deriver: the Noise PSK function (argon2id by default).
        rng: the random source.
    """

    clients: dict[str, ClientRecord]
    node_id: str = "conformance-reference-hub"
    site_id: str = "reference-site"
    binarize: bool = True
    noise: bool = True
    handshake_timeout: float = 10.0
    max_frame_bytes: int = 10 * 1024 * 1024
    psk_deriver: Callable[[str, str], bytes] = derive_psk
    rng: Callable[[int], bytes] = os.urandom


@dataclass(slots=True)
class _Registered:
    channel: HiveChannel
    record: ClientRecord
    session: dict[str, Any]
    pubkey: str | None = None


class ReferenceHub:
    """The state and behaviour of one running reference hub."""

    def __init__(self, config: ReferenceHubConfig) -> None:
        self.config = config
        self.peers: dict[str, _Registered] = {}
        self.floods: list[str] = []
        self.static = StaticKeypair.generate(config.rng)
        self._psks: dict[str, bytes] = {}

    # -- admission ---------------------------------------------------------

    def lookup(self, access_key: str) -> ClientRecord | None:
        """The record of ``access_key``; the tombstone key ``revoked`` never matches."""
        if access_key == "revoked":
            return None
        return self.config.clients.get(access_key)

    async def authenticate(self, auth: Authorization) -> HubSettings | None:
        """serve_hive callback: per-connection settings, None for unknown keys."""
        record = self.lookup(auth.access_key)
        if record is None:
            return None
        hello = self.hello_payload(auth, record)
        noise = None
        if self.config.noise:
            noise = NoiseIdentity(self.static, psk=await self._psk(record.password))
        return HubSettings(
            hello=hello,
            password=record.password,
            binarize=self.config.binarize,
            noise=noise,
            max_frame_bytes=self.config.max_frame_bytes,
        )

    def hello_payload(self, auth: Authorization, record: ClientRecord) -> dict[str, Any]:
        """Our HELLO: no RSA key (the RSA handshake is never offered)."""
        peer = self.peer_name(auth, record, {"session_id": "default"})
        return {"pubkey": None, "peer": peer, "node_id": self.config.node_id}

    def peer_name(self, auth: Authorization, record: ClientRecord, session: dict[str, Any]) -> str:
        """The routing key of a session: useragent, client, name and session id."""
        return f"{auth.useragent}::{record.client_id}::{record.name}::{session['session_id']}"

    def refuses_default(self, record: ClientRecord) -> bool:
        """Whether this client may not use the session id 'default'."""
        return not record.is_admin

    def may_send(self, record: ClientRecord, kind: MessageType) -> bool:
        """The wrapper permissions (BROADCAST needs admin and can_broadcast)."""
        if kind is MessageType.BROADCAST:
            return record.is_admin and record.can_broadcast
        if kind is MessageType.PROPAGATE:
            return record.can_propagate
        return record.can_escalate

    async def _psk(self, password: str) -> bytes:
        """The client's Noise PSK for this hub, derived once (argon2id is slow)."""
        if password not in self._psks:
            self._psks[password] = await trio.to_thread.run_sync(
                self.config.psk_deriver, password, self.config.node_id
            )
        return self._psks[password]

    # -- per connection ----------------------------------------------------

    async def handle(self, channel: HiveChannel, auth: Authorization) -> None:
        """serve_hive handler: register the session and dispatch its messages."""
        record = self.lookup(auth.access_key)
        assert record is not None
        assert channel.hello is not None
        session = channel.hello.payload.get("session")
        session = dict(session) if isinstance(session, dict) else {"session_id": "default"}
        if session.get("session_id") == "default" and self.refuses_default(record):
            await channel.aclose(CloseCode.POLICY_VIOLATION, "session 'default' is reserved")
            return
        peer = self.peer_name(auth, record, session)
        pubkey = channel.hello.payload.get("pubkey")
        pubkey = pubkey if isinstance(pubkey, str) else None
        self.peers[peer] = _Registered(channel, record, session, pubkey)
        try:
            while True:
                event = await channel.receive_event()
                if isinstance(event, MessageReceived):
                    await self.dispatch(peer, event.message)
        finally:
            if self.peers.get(peer, None) is not None and self.peers[peer].channel is channel:
                del self.peers[peer]

    async def dispatch(self, peer: str, message: HiveMessage) -> None:
        """Route one inbound message (spec §7.1)."""
        me = self.peers[peer]
        message = message.replace(source_peer=peer).with_hop(peer)
        kind = message.msg_type
        if kind is MessageType.BUS:
            await self.inject(peer, message)
        elif kind in (MessageType.BROADCAST, MessageType.PROPAGATE, MessageType.ESCALATE):
            if not self.may_send(me.record, kind):
                await self.kick(me, f"{kind.value} not allowed")
                return
            await self.local_wrapper(peer, message)
            if kind is not MessageType.ESCALATE:
                self.relay(peer, message.inner)
        elif kind is MessageType.INTERCOM:
            self.intercom(peer, message)
        elif kind is MessageType.BINARY and not me.record.allowed_types:
            self.deny(peer, "binary", "acl_disallowed_type")

    async def kick(self, me: _Registered, reason: str) -> None:
        """Close a client that broke its permissions."""
        await me.channel.aclose(CloseCode.POLICY_VIOLATION, reason)

    async def local_wrapper(self, peer: str, message: HiveMessage) -> None:
        """Local handling of a wrapper: PING floods, site-targeted BUS injection."""
        inner = message.inner
        if inner.msg_type is MessageType.PING and message.msg_type is MessageType.PROPAGATE:
            self.ping(inner)
        elif inner.msg_type is MessageType.BUS and message.target_site_id == self.config.site_id:
            await self.inject(peer, inner)

    def ping(self, ping: HiveMessage) -> None:
        """Answer a PING flood once per ``flood_id`` with our own PING."""
        flood_id = ping.payload.get("flood_id") if isinstance(ping.payload, dict) else None
        if not isinstance(flood_id, str) or flood_id in self.floods:
            return
        self.floods = [*self.floods[-FLOOD_MEMORY + 1 :], flood_id]
        own = HiveMessage(
            MessageType.PING,
            {
                "flood_id": flood_id,
                "peer": self.config.node_id,
                "site_id": self.config.site_id,
                "timestamp": trio.current_time(),
            },
        )
        wrapped = HiveMessage(MessageType.PROPAGATE, own)
        for registered in list(self.peers.values()):
            registered.channel.send_nowait(wrapped)

    def intercom(self, sender: str, message: HiveMessage) -> None:
        """Relay a signed INTERCOM to the sessions whose HELLO key is its target (§7.4).

        The reference hub has no INTERCOM key of its own: one without a target
        (addressed to the hub) is dropped like a badly signed one.
        """
        if not self.signed(self.peers[sender], message) or message.target_pubkey is None:
            return
        wanted = message.target_pubkey.strip()
        for peer, registered in list(self.peers.items()):
            if peer != sender and (registered.pubkey or "").strip() == wanted:
                registered.channel.send_nowait(message)

    def signed(self, me: _Registered, message: HiveMessage) -> bool:
        """Whether the INTERCOM signature verifies against the sender's HELLO key."""
        return me.pubkey is not None and _rsa.verify(me.pubkey, message.payload)

    def relay(self, sender: str, inner: HiveMessage) -> None:
        """Send the unwrapped inner message to every other registered client."""
        for peer, registered in list(self.peers.items()):
            if peer != sender:
                registered.channel.send_nowait(inner)

    # -- the agent side ----------------------------------------------------

    async def inject(self, peer: str, message: HiveMessage) -> None:
        """Admit a BUS message and hand it to the agent (spec §7.2)."""
        me = self.peers[peer]
        payload = dict(message.payload)  # type: ignore[arg-type]
        kind = str(payload.get("type"))
        context = dict(payload.get("context") or {})
        declared = context.get("session")
        default = isinstance(declared, dict) and declared.get("session_id") == "default"
        if default and self.refuses_default(me.record):
            self.deny(peer, kind, "session_id_default_forbidden")
            return
        if not self.admit(me.record, kind):
            self.deny(peer, kind, "acl_disallowed_type")
            return
        context["session"] = dict(me.session)
        if kind == "speak":
            context["destination"] = ["audio"]
        elif context.get("destination") is None:
            context["destination"] = "skills"
        context["peer"] = context["source"] = peer
        self.agent(kind, payload.get("data") or {}, context)

    def admit(self, record: ClientRecord, kind: str) -> bool:
        """The type ACL: deny by default."""
        return kind in record.allowed_types

    def deny(self, peer: str, denied_type: str, code: str) -> None:
        """Tell the client its message was refused."""
        data = {"denied_type": denied_type, "code": code, "reason": code, "data": {}}
        context = {"source": "hivemind-conformance-reference", "destination": peer}
        self.deliver(HiveMessage(MessageType.BUS, bus_message("hive.policy.denied", data, context)))

    def agent(self, kind: str, data: dict[str, Any], context: dict[str, Any]) -> None:
        """The echo agent: answer ``hive.conformance.*`` requests to their sender."""
        if not kind.startswith(CONFORMANCE_PREFIX) or kind.endswith(".reply"):
            return
        reply_context = {"source": "hive", "destination": context["source"]}
        body = {"data": data, "context": context}
        self.deliver(
            HiveMessage(MessageType.BUS, bus_message(kind + ".reply", body, reply_context))
        )

    def deliver(self, message: HiveMessage) -> None:
        """Send an agent message to the registered peers named in its destination."""
        destination = message.payload.get("context", {}).get("destination")  # type: ignore[union-attr]
        names = destination if isinstance(destination, list) else [destination]
        for name in names:
            registered = self.peers.get(name) if isinstance(name, str) else None
            if registered is not None:
                registered.channel.send_nowait(message.replace(source_peer=name))


async def serve_reference_hub(
    config: ReferenceHubConfig,
    *,
    hub: ReferenceHub | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the reference hub on 127.0.0.1; reports the bound port."""
    hub = hub or ReferenceHub(config)
    limits = ServerLimits(
        max_message_bytes=config.max_frame_bytes,
        channel=ChannelLimits(
            handshake_timeout=config.handshake_timeout, frames_per_second=2000, burst=2000
        ),
    )

    async def handler(channel: HiveChannel, auth: Authorization) -> None:
        with contextlib.suppress(ChannelClosed):
            await hub.handle(channel, auth)

    await serve_hive(
        hub.authenticate,
        handler,
        "127.0.0.1",
        0,
        rng=config.rng,
        limits=limits,
        task_status=task_status,
    )
