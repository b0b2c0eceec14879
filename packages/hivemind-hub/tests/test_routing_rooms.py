"""Room requests (``hivemind.room.*`` in QUERY) pass the policy chain before they are relayed."""

from __future__ import annotations

from hivemind_hub import Client
from hivemind_hub.policy import build_policy_chain
from hivemind_hub.routing import PeerState, Router, SendToPeer, SendUpstream
from hivemind_proto import HiveMessage, MessageType, bus_message

NODE = "hub-rooms"
SAT = "ua::1::sat::s1"
ASK = "hivemind.room.ask"
SEALED = {"room_id": "room_0123456789ab", "nonce": "ab" * 16, "sealed_b64": "AAAA"}


def _router() -> Router:
    r = Router(node_id=NODE, public_key="pem", site_id="home", chain=build_policy_chain(()))
    r.register(PeerState(SAT, 1, {"session_id": "s1"}))
    r.set_upstream("upstream::rooms")
    return r


def _query(msg_type: str) -> HiveMessage:
    inner = HiveMessage(MessageType.BUS, bus_message(msg_type, SEALED, {}))
    return HiveMessage(MessageType.QUERY, inner, metadata={"query_id": "q1"})


def _client(*types: str) -> Client:
    return Client(client_id=1, api_key="k1", allowed_types=types, can_escalate=True)


def test_granted_room_request_is_relayed_upstream_unchanged() -> None:
    actions = _router().from_peer(SAT, _query(ASK), _client(ASK), 1.0)
    [up] = actions
    assert isinstance(up, SendUpstream)
    assert up.message.inner.payload["data"] == SEALED
    assert up.message.metadata["originator_peer"] == SAT


def test_room_request_without_the_type_is_denied_and_not_relayed() -> None:
    actions = _router().from_peer(SAT, _query(ASK), _client("hivemind.room.attestation"), 1.0)
    [notice] = actions
    assert isinstance(notice, SendToPeer)
    assert notice.peer == SAT
    assert notice.message.payload["type"] == "hive.policy.denied"
    assert not [a for a in actions if isinstance(a, SendUpstream)]


def test_other_queries_keep_their_previous_admission() -> None:
    # Non-room queries are not reviewed by the chain when relayed (unchanged behaviour).
    actions = _router().from_peer(SAT, _query("some.other.question"), _client(ASK), 1.0)
    assert [type(a) for a in actions] == [SendUpstream]
