"""The hub's routing core: one inbound message in, an outbox out.

Theory of operation
-------------------
``Router`` holds the routing table (registered connections with their client
record and session), the hub's identity, and two bounded memories: PING
flood ids already seen and the origin of each open QUERY. It performs no I/O
and reads no clock (``now`` is passed in). The server feeds it three kinds of
input and carries out the returned actions in order:

* ``from_peer``: a message from a downstream connection, with the sender's
  client record as just re-read from the database;
* ``from_upstream``: a message from our parent hub (when we are linked);
* ``from_agent``: a message the agent put on its bus (the outbound half).

Route bookkeeping (spec §2.4): every inbound message gets
``source_peer = <sender>`` and a hop ``{source: sender}``; every message we
forward gets ``source_peer = node_id`` and a hop ``{source: node_id}``.

Loop prevention: our ``node_id`` is unique per hub. A message whose route
already holds a hop made by us (``node_id`` or our public key) has been here
before and is dropped outright, neither handled nor forwarded, so a ring of
hub links cannot multiply it. PING floods are also deduplicated by
``flood_id`` (bounded set), and a hub answers each flood id once.

Admission: envelope permissions first (an illegal BROADCAST, PROPAGATE,
ESCALATE, QUERY or CASCADE disconnects the sender with 1008), then the policy
chain for every agent-bus message and binary payload (a denial is answered
with ``hive.policy.denied``, the connection stays open).

Client isolation (spec §7.3): an agent message reaches a connection only if
that connection's peer is named in ``context.destination``; a satellite may
not name another connection as the destination of what it injects.

INTERCOM integrity (spec W17): an INTERCOM (direct, or inside BROADCAST,
PROPAGATE or ESCALATE) is acted on only when its signature verifies against
the key the sending connection declared in its HELLO; anything else (no key,
no signature, plaintext, oversize, bad signature) is dropped and counted in
``intercom_drops``, never relayed. One addressed to the hub (``target_pubkey``
is our key, or absent on a direct INTERCOM) is opened with the injected
``IntercomCrypto`` and its *inner* message is dispatched exactly as if the
connection had sent it (envelope grants, policy chain, denials). INTERCOM from
the parent hub is dropped: its end-to-end signer is pinned nowhere here.
"""

from __future__ import annotations

import copy
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from hivemind_proto import BinaryType, CloseCode, HiveMessage, MessageType, bus_message

from ..clients import Client
from ..injection import prepare_injection
from ..policy import PolicyChain, check_envelope, freeze, policy_denied_message
from ._actions import (
    Action,
    BinaryPayload,
    Disconnect,
    EmitToAgent,
    SendToPeer,
    SendUpstream,
    SharedBus,
    UpdateSession,
)
from ._bounded import BoundedMap, BoundedSet
from ._intercom import EnvelopeError, IntercomCrypto, SealedIntercom, decode_inner, parse_envelope

__all__ = ["UPSTREAM", "PeerState", "Router"]

#: Marker for "the parent hub" in the open-query table.
UPSTREAM: Final = "<upstream>"
QUERY_KEY: Final = "hivemind_query"
#: The only question a local agent answers (spec §2.5); other queries go upstream.
UTTERANCE: Final = "recognizer_loop:utterance"
#: Room requests (QUERY-wrapped) relayed to a linked room service.
ROOM_NAMESPACE: Final = "hivemind.room."
_WRAPPERS: Final = frozenset({MessageType.BROADCAST, MessageType.PROPAGATE, MessageType.ESCALATE})

log = logging.getLogger("hivemind_hub.routing")


@dataclass(frozen=True)
class PeerState:
    """One registered downstream connection.

    Attributes:
        peer: The routing key ``useragent::client_id::name::session_id``.
        client_id: The client record's id.
        session: The connection's current (serialized) session.
        site_id: The site the satellite declared in its HELLO.
        pubkey: The public key the satellite declared in its HELLO, if any.
    """

    peer: str
    client_id: int
    session: Mapping[str, Any] = field(default_factory=dict)
    site_id: str | None = None
    pubkey: str | None = None


def _plain(value: Any) -> Any:
    """Deep-copy JSON-like data into plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return copy.copy(value)


def _destinations(context: Mapping[str, Any]) -> list[str]:
    dest = context.get("destination")
    if isinstance(dest, str):
        return [dest]
    if isinstance(dest, list):
        return [d for d in dest if isinstance(d, str)]
    return []


class Router:
    """The pure routing core of one hub.

    Args:
        node_id: This hub's unique id.
        public_key: This hub's public key (PEM), also a loop marker.
        site_id: This hub's site id.
        chain: The policy admission chain.
        agent_answers_queries: True when the local agent answers QUERY.
        flood_memory: How many PING flood ids are remembered.
        query_memory: How many open queries are remembered.
        ping_flood_interval: Least seconds between two of this hub's own PING
            answers: each new flood id would otherwise make the hub message
            every connection, so anyone able to send PING could multiply
            its traffic by the number of peers (spec W22).
        intercom: Signature checks and decryption for INTERCOM; None drops
            every INTERCOM (nothing can be verified).
    """

    def __init__(
        self,
        *,
        node_id: str,
        public_key: str,
        site_id: str,
        chain: PolicyChain,
        agent_answers_queries: bool = False,
        flood_memory: int = 1000,
        query_memory: int = 1000,
        ping_flood_interval: float = 30.0,
        intercom: IntercomCrypto | None = None,
    ) -> None:
        self.node_id = node_id
        self.public_key = public_key
        self.site_id = site_id
        self.chain = chain
        self.agent_answers_queries = agent_answers_queries
        self.peers: dict[str, PeerState] = {}
        self.upstream_peer: str | None = None
        self.seen_floods: BoundedSet[str] = BoundedSet(flood_memory)
        self.open_queries: BoundedMap[str, str] = BoundedMap(query_memory)
        self.ping_flood_interval = ping_flood_interval
        self._last_ping_answer: float | None = None
        self._query_seq = 0
        self.intercom = intercom
        #: INTERCOM messages dropped, by reason (no payload is kept).
        self.intercom_drops: Counter[str] = Counter()

    # -- routing table -------------------------------------------------------

    def register(self, state: PeerState) -> None:
        """Add (or replace) a downstream connection."""
        self.peers[state.peer] = state

    def unregister(self, peer: str) -> None:
        """Forget a downstream connection."""
        self.peers.pop(peer, None)

    def set_upstream(self, name: str | None) -> None:
        """Record whether (and under which name) the parent link is up."""
        self.upstream_peer = name

    # -- inbound from a downstream connection --------------------------------

    def from_peer(
        self, peer: str, message: HiveMessage, client: Client, now: float
    ) -> list[Action]:
        """Route one message from a registered connection.

        Args:
            peer: The sender's peer string (must be registered).
            message: The message as decoded.
            client: The sender's current client record.
            now: Current Unix time (PING answers carry it).

        Returns:
            The actions to carry out, in order.
        """
        state = self.peers.get(peer)
        if state is None:
            return []
        msg = message.replace(source_peer=peer).with_hop(peer)
        return self._dispatch(state, client, msg, now)

    def _dispatch(
        self, state: PeerState, client: Client, msg: HiveMessage, now: float
    ) -> list[Action]:
        """Admit and route one message from ``state`` (also INTERCOM's inner one)."""
        peer = state.peer
        kind = msg.msg_type
        if kind in _WRAPPERS or kind in (MessageType.QUERY, MessageType.CASCADE):
            verdict = check_envelope(client, kind)
            if not verdict.allowed:
                return [Disconnect(peer, CloseCode.POLICY_VIOLATION, verdict.code)]
        if self._looped(msg):
            return []
        if kind is MessageType.BUS:
            return self._admit_bus(state, client, msg.payload)  # type: ignore[arg-type]
        if kind is MessageType.SHARED_BUS:
            return [SharedBus(peer, _plain(msg.payload))]
        if kind is MessageType.BINARY:
            return self._admit_binary(state, client, msg)
        if kind in _WRAPPERS:
            return self._wrapper_from_peer(state, client, msg, now)
        if kind in (MessageType.QUERY, MessageType.CASCADE):
            return self._query_from_peer(state, client, msg)
        if kind is MessageType.INTERCOM:
            return self._intercom_from_peer(state, client, msg, now)
        return []

    def _looped(self, msg: HiveMessage) -> bool:
        return msg.route_contains(self.node_id) or msg.route_contains(self.public_key)

    def _stamp(self, msg: HiveMessage) -> HiveMessage:
        return msg.replace(source_peer=self.node_id).with_hop(self.node_id)

    def _admit_bus(
        self, state: PeerState, client: Client, payload: Mapping[str, Any], query: Any = None
    ) -> list[Action]:
        plain = freeze(payload)  # the one copy; policies read it as is
        decision = self.chain.review(client, plain)
        if not decision.allowed:
            notice = policy_denied_message(
                decision, denied_type=str(plain.get("type")), peer=state.peer
            )
            return [SendToPeer(state.peer, HiveMessage(MessageType.BUS, notice))]
        admitted = decision.message if decision.message is not None else plain
        actions, session = self._track_session(state, admitted)
        out = prepare_injection(
            self._own_destination(admitted, state.peer), peer=state.peer, session=session
        )
        if query is not None:
            out["context"][QUERY_KEY] = query
        self.chain.observe(client, out)
        return [*actions, EmitToAgent(out, state.peer)]

    def _track_session(
        self, state: PeerState, message: Mapping[str, Any]
    ) -> tuple[list[Action], Mapping[str, Any]]:
        context = message.get("context")
        declared = context.get("session") if isinstance(context, Mapping) else None
        current = state.session
        if not isinstance(declared, Mapping):
            return [], current
        sid = declared.get("session_id")
        if sid in (None, "default") or sid != current.get("session_id"):
            return [], current
        merged = {**dict(current), **_plain(declared)}
        self.peers[state.peer] = PeerState(
            state.peer, state.client_id, merged, state.site_id, state.pubkey
        )
        return [UpdateSession(state.peer, merged)], merged

    @staticmethod
    def _own_destination(message: Mapping[str, Any], peer: str) -> dict[str, Any]:
        """Refuse destinations naming another connection (client isolation)."""
        out = dict(message)
        context = dict(out.get("context") or {})
        names = _destinations(context)
        if any("::" in name and name != peer for name in names):
            context["destination"] = "skills"
        out["context"] = context
        return out

    def _admit_binary(self, state: PeerState, client: Client, msg: HiveMessage) -> list[Action]:
        decision = self.chain.review_binary(client, msg.bin_type, msg.metadata)
        if not decision.allowed:
            notice = policy_denied_message(
                decision, denied_type="binary", peer=state.peer, bin_type=int(msg.bin_type)
            )
            return [SendToPeer(state.peer, HiveMessage(MessageType.BUS, notice))]
        payload = msg.payload
        assert isinstance(payload, bytes)
        return [BinaryPayload(state.peer, BinaryType(msg.bin_type), payload, _plain(msg.metadata))]

    def _wrapper_from_peer(
        self, state: PeerState, client: Client, msg: HiveMessage, now: float
    ) -> list[Action]:
        inner = msg.inner
        if inner.msg_type is MessageType.INTERCOM:
            return self._wrapped_intercom(state, client, msg, now)
        ping = self._ping(msg, now)
        if ping is None:
            return []
        actions = list(ping)
        if inner.msg_type is MessageType.BUS and self._site_matches(msg):
            actions += self._admit_bus(state, client, inner.payload)  # type: ignore[arg-type]
        forward = self._stamp(msg)
        if msg.msg_type in (MessageType.BROADCAST, MessageType.PROPAGATE):
            actions += self._to_all(forward, exclude=state.peer)
        if msg.msg_type in (MessageType.PROPAGATE, MessageType.ESCALATE):
            actions += self._up(forward)
        return actions

    def _site_matches(self, msg: HiveMessage) -> bool:
        site = msg.target_site_id or msg.inner.target_site_id
        return site is not None and site == self.site_id

    def _ping(self, msg: HiveMessage, now: float) -> list[Action] | None:
        """Handle a PROPAGATE(PING); None means a repeated flood (drop it)."""
        inner = msg.inner
        if msg.msg_type is not MessageType.PROPAGATE or inner.msg_type is not MessageType.PING:
            return []
        payload = inner.payload
        flood_id = payload.get("flood_id") if isinstance(payload, Mapping) else None
        if not isinstance(flood_id, str) or not flood_id:
            return None
        if not self.seen_floods.add(flood_id):
            return None
        event = bus_message("hive.ping.received", _plain(payload), {"source": msg.source_peer})
        if not self._may_answer_ping(now):
            return [EmitToAgent(event)]
        answer = HiveMessage(
            MessageType.PROPAGATE,
            HiveMessage(
                MessageType.PING,
                {
                    "flood_id": flood_id,
                    "peer": self.node_id,
                    "site_id": self.site_id,
                    "timestamp": now,
                },
            ),
            source_peer=self.node_id,
            route=msg.route,
        ).with_hop(self.node_id)
        return [EmitToAgent(event), *self._to_all(answer), *self._up(answer)]

    def _may_answer_ping(self, now: float) -> bool:
        last = self._last_ping_answer
        if last is not None and 0 <= now - last < self.ping_flood_interval:
            return False
        self._last_ping_answer = now
        return True

    def _to_all(self, message: HiveMessage, exclude: str | None = None) -> list[Action]:
        return [SendToPeer(p, message) for p in self.peers if p != exclude]

    def _up(self, message: HiveMessage) -> list[Action]:
        return [SendUpstream(message)] if self.upstream_peer else []

    # -- INTERCOM ----------------------------------------------------------------

    def _drop_intercom(self, peer: str, reason: str) -> list[Action]:
        self.intercom_drops[reason] += 1
        log.debug("INTERCOM from %s dropped: %s", peer, reason)
        return []

    def _verified(self, state: PeerState, intercom: HiveMessage) -> SealedIntercom | str:
        """The envelope if the sender's pinned key signed it, else a drop reason."""
        try:
            sealed = parse_envelope(intercom.payload)
        except EnvelopeError as exc:
            return exc.reason
        if self.intercom is None:
            return "no_crypto"
        if not state.pubkey:
            return "no_pin"
        if not self.intercom.verify(state.pubkey, sealed.ciphertext, sealed.signature):
            return "bad_signature"
        return sealed

    def _for_us(self, target: str | None) -> bool:
        return target is not None and target.strip() == self.public_key.strip()

    def _intercom_from_peer(
        self, state: PeerState, client: Client, msg: HiveMessage, now: float
    ) -> list[Action]:
        sealed = self._verified(state, msg)
        if isinstance(sealed, str):
            return self._drop_intercom(state.peer, sealed)
        target = msg.target_pubkey
        if target is None or self._for_us(target):
            return self._open_for_hub(state, client, msg, sealed, now)
        forward = self._stamp(msg)
        wanted = target.strip()
        return [
            SendToPeer(p.peer, forward)
            for p in self.peers.values()
            if p.pubkey is not None and p.pubkey.strip() == wanted and p.peer != state.peer
        ]

    def _wrapped_intercom(
        self, state: PeerState, client: Client, msg: HiveMessage, now: float
    ) -> list[Action]:
        """BROADCAST/PROPAGATE/ESCALATE(INTERCOM): verify before relaying anything."""
        intercom = msg.inner
        sealed = self._verified(state, intercom)
        if isinstance(sealed, str):
            return self._drop_intercom(state.peer, sealed)
        if self._for_us(intercom.target_pubkey):
            inner = intercom.replace(route=msg.route)
            return self._open_for_hub(state, client, inner, sealed, now)
        forward = self._stamp(msg)
        actions: list[Action] = []
        if msg.msg_type in (MessageType.BROADCAST, MessageType.PROPAGATE):
            actions += self._to_all(forward, exclude=state.peer)
        if msg.msg_type in (MessageType.PROPAGATE, MessageType.ESCALATE):
            actions += self._up(forward)
        return actions

    def _open_for_hub(
        self,
        state: PeerState,
        client: Client,
        msg: HiveMessage,
        sealed: SealedIntercom,
        now: float,
    ) -> list[Action]:
        """Open an INTERCOM addressed to us and dispatch its inner message."""
        if self.intercom is None:
            return self._drop_intercom(state.peer, "no_crypto")
        plaintext = self.intercom.open(sealed)
        if plaintext is None:
            return self._drop_intercom(state.peer, "undecryptable")
        inner = decode_inner(plaintext)
        if inner is None:
            return self._drop_intercom(state.peer, "bad_inner")
        inner = inner.replace(route=msg.route, source_peer=state.peer)
        return self._dispatch(state, client, inner, now)

    # -- QUERY / CASCADE -------------------------------------------------------

    def _query_id(self, msg: HiveMessage, origin: str) -> str:
        qid = msg.metadata.get("query_id")
        if isinstance(qid, str) and qid:
            return qid
        self._query_seq += 1
        return f"{self.node_id}:{self._query_seq}"

    def _query_from_peer(self, state: PeerState, client: Client, msg: HiveMessage) -> list[Action]:
        if msg.metadata.get("is_response") is True:
            return self._deliver_response(msg)
        inner = msg.inner
        if inner.msg_type is not MessageType.BUS:
            return []
        denied = self._review_room_request(state, client, inner.payload)
        if denied is not None:
            return denied
        qid = self._query_id(msg, state.peer)
        self.open_queries[qid] = state.peer
        meta = {**_plain(msg.metadata), "query_id": qid, "originator_peer": state.peer}
        actions: list[Action] = []
        if self.agent_answers_queries and inner.bus_type == UTTERANCE:
            query = {"query_id": qid, "originator_peer": state.peer}
            actions += self._admit_bus(state, client, inner.payload, query)  # type: ignore[arg-type]
            if msg.msg_type is MessageType.QUERY:
                return actions
        forward = self._stamp(msg.replace(metadata=meta))
        if msg.msg_type is MessageType.CASCADE:
            actions += self._to_all(forward, exclude=state.peer)
        if self.upstream_peer:
            return [*actions, SendUpstream(forward)]
        if not actions:
            return [SendToPeer(state.peer, self._timeout(qid, state.peer))]
        return actions

    def _review_room_request(
        self, state: PeerState, client: Client, payload: Any
    ) -> list[Action] | None:
        """Admit a relayed ``hivemind.room.*`` request through the policy chain.

        Room requests ride in QUERY envelopes towards a linked room service;
        the chain (``allowed_types``) decides which clients may send them.
        Their sealed content is relayed unchanged: None means admitted.
        """
        kind = payload.get("type") if isinstance(payload, Mapping) else None
        if not isinstance(kind, str) or not kind.startswith(ROOM_NAMESPACE):
            return None
        decision = self.chain.review(client, freeze(payload))
        if decision.allowed:
            return None
        notice = policy_denied_message(decision, denied_type=kind, peer=state.peer)
        return [SendToPeer(state.peer, HiveMessage(MessageType.BUS, notice))]

    def _timeout(self, qid: str, origin: str) -> HiveMessage:
        notice = bus_message(
            "hive.query.timeout",
            {"query_id": qid, "error": "no_answer"},
            {"source": "hivemind-core", "destination": origin},
        )
        return self.response(qid, origin, notice)

    def response(self, qid: str, origin: str, payload: Mapping[str, Any]) -> HiveMessage:
        """Wrap an agent-bus answer as a QUERY response for ``origin``."""
        meta = {
            "query_id": qid,
            "originator_peer": origin,
            "responder_peer": self.node_id,
            "is_response": True,
        }
        inner = HiveMessage(MessageType.BUS, _plain(payload))
        return HiveMessage(MessageType.QUERY, inner, metadata=meta, source_peer=self.node_id)

    def _deliver_response(self, msg: HiveMessage) -> list[Action]:
        qid = msg.metadata.get("query_id")
        origin = self.open_queries.get(qid) if isinstance(qid, str) else None
        if origin is None:
            return []
        forward = msg.replace(source_peer=self.node_id)
        if origin == UPSTREAM:
            return self._up(forward)
        if origin in self.peers:
            return [SendToPeer(origin, forward)]
        return []

    # -- inbound from the parent hub -------------------------------------------

    def from_upstream(self, message: HiveMessage, now: float) -> list[Action]:
        """Route one message received from the parent hub."""
        name = self.upstream_peer or "upstream"
        msg = message.replace(source_peer=name).with_hop(name)
        if self._looped(msg):
            return []
        kind = msg.msg_type
        if kind is MessageType.BUS:
            return [EmitToAgent(_plain(msg.payload))]
        if kind in (MessageType.BROADCAST, MessageType.PROPAGATE):
            if msg.inner.msg_type is MessageType.INTERCOM:
                return self._drop_intercom(name, "upstream")
            ping = self._ping(msg, now)
            if ping is None:
                return []
            actions = list(ping)
            inner = msg.inner
            if inner.msg_type is MessageType.BUS and self._site_matches(msg):
                actions.append(EmitToAgent(_plain(inner.payload)))
            return [*actions, *self._to_all(self._stamp(msg))]
        if kind in (MessageType.QUERY, MessageType.CASCADE):
            if msg.metadata.get("is_response") is True:
                return self._deliver_response(msg)
            return self._query_from_upstream(msg)
        if kind is MessageType.INTERCOM:
            return self._drop_intercom(name, "upstream")
        return []

    def _query_from_upstream(self, msg: HiveMessage) -> list[Action]:
        qid = self._query_id(msg, UPSTREAM)
        self.open_queries[qid] = UPSTREAM
        actions: list[Action] = []
        inner = msg.inner
        if self.agent_answers_queries and inner.bus_type == UTTERANCE:
            out = _plain(inner.payload)
            context = out.setdefault("context", {})
            context[QUERY_KEY] = {"query_id": qid, "originator_peer": UPSTREAM}
            context["source"] = context["peer"] = self.upstream_peer or "upstream"
            context["destination"] = "skills"
            actions.append(EmitToAgent(out))
        if msg.msg_type is MessageType.CASCADE:
            actions += self._to_all(self._stamp(msg))
        return actions

    # -- outbound half: the agent's bus ------------------------------------------

    def from_agent(self, message: Mapping[str, Any]) -> list[Action]:
        """Route a message the agent emitted on its bus.

        Only connections named in ``context.destination`` receive it; answers
        to a QUERY go back to the query's origin as QUERY responses.
        """
        if not isinstance(message.get("type"), str):
            return []
        if not isinstance(message.get("data", {}), Mapping):
            return []
        if message["type"] == "hive.send.downstream":
            return self._downstream(message)
        context = message.get("context")
        if not isinstance(context, Mapping):
            return []
        query = context.get(QUERY_KEY)
        if isinstance(query, Mapping):
            # An injected question echoes back with source == peer; answers
            # made with Message.reply carry the swapped source.
            if context.get("source") == context.get("peer"):
                return []
            return self._answer(message, query)
        out = _plain(message)
        out["context"]["source"] = "hive"
        return [
            SendToPeer(p, HiveMessage(MessageType.BUS, out, source_peer=p))
            for p in dict.fromkeys(_destinations(context))
            if p in self.peers
        ]

    def _answer(self, message: Mapping[str, Any], query: Mapping[str, Any]) -> list[Action]:
        qid = query.get("query_id")
        origin = self.open_queries.get(qid) if isinstance(qid, str) else None
        if origin is None or not isinstance(qid, str):
            return []
        wrapped = self.response(qid, origin, message)
        if origin == UPSTREAM:
            return self._up(wrapped)
        return [SendToPeer(origin, wrapped)] if origin in self.peers else []

    def _downstream(self, message: Mapping[str, Any]) -> list[Action]:
        data = message.get("data")
        if not isinstance(data, Mapping):
            return []
        try:
            built = HiveMessage.from_dict(
                {"msg_type": data.get("msg_type"), "payload": data.get("payload")}
            )
        except Exception:
            return []
        msg = built.replace(source_peer=self.node_id)
        if msg.msg_type in (MessageType.PROPAGATE, MessageType.BROADCAST):
            return self._to_all(msg)
        if msg.msg_type is MessageType.ESCALATE:
            return []
        peer = data.get("peer")
        if isinstance(peer, str) and peer in self.peers:
            return [SendToPeer(peer, msg)]
        error = bus_message(
            "hive.client.send.error",
            {"error": "That client is not connected", "peer": peer},
            {"source": "hive"},
        )
        return [EmitToAgent(error)]
