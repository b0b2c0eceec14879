from __future__ import annotations

import copy

import pytest
from hivemind_hub import Client, StoreError
from hivemind_hub.config import PolicyEntry
from hivemind_hub.policy import (
    BasePolicy,
    ChainLink,
    MessageTypeACLPolicy,
    OVOSAgentPolicy,
    PolicyChain,
    PolicyDecision,
    build_policy_chain,
    policy_denied_message,
)
from hivemind_hub.store import SQLiteClientStore
from hivemind_proto._types import BinaryType


def client(**fields):
    base = {"client_id": 1, "api_key": "k", "allowed_types": ["recognizer_loop:utterance"]}
    base.update(fields)
    return Client(**base)


def bus(msg_type="recognizer_loop:utterance", session_id="abc", **context):
    ctx = {"session": {"session_id": session_id}, **context}
    return {"type": msg_type, "data": {"utterances": ["hi"]}, "context": ctx}


def default_chain():
    return build_policy_chain([PolicyEntry("hivemind-ovos-agent-policy")])


def test_default_chain_order_uses_registered_entry_point():
    assert default_chain().names == [
        "message-type-acl",
        "default-session",
        "hivemind-ovos-agent-policy",
    ]


def test_allowed_type_passes():
    decision = default_chain().review(client(), bus())
    assert decision.allowed
    assert decision.message["type"] == "recognizer_loop:utterance"


def test_type_not_in_whitelist_is_denied():
    decision = default_chain().review(client(), bus("speak"))
    assert not decision.allowed
    assert decision.code == "acl_disallowed_type"
    assert "speak" in decision.reason


@pytest.mark.parametrize("is_admin", [False, True])
def test_empty_whitelist_denies_everyone(is_admin):
    c = client(allowed_types=[], is_admin=is_admin)
    assert default_chain().review(c, bus()).code == "acl_disallowed_type"
    assert default_chain().review_binary(c, BinaryType.RAW_AUDIO).code == "acl_disallowed_type"


def test_binary_allowed_with_nonempty_whitelist():
    assert default_chain().review_binary(client(), BinaryType.STT_AUDIO_TRANSCRIBE).allowed


def test_message_without_type_is_denied():
    assert default_chain().review(client(), {"data": {}}).code == "acl_disallowed_type"


def test_default_session_forbidden_for_non_admin():
    decision = default_chain().review(client(), bus(session_id="default"))
    assert decision.code == "session_id_default_forbidden"
    assert default_chain().review(client(is_admin=True), bus(session_id="default")).allowed


def test_message_without_session_is_not_a_default_session_claim():
    message = {"type": "recognizer_loop:utterance", "data": {}}
    assert default_chain().review(client(), message).allowed


def test_ovos_policy_merges_blacklists_without_touching_input():
    c = client(metadata={"skill_blacklist": ["skill-a"], "intent_blacklist": ["i.b"]})
    message = bus()
    message["context"]["session"]["blacklisted_skills"] = ["skill-x", "skill-a"]
    before = copy.deepcopy(message)
    decision = default_chain().review(c, message)
    session = decision.message["context"]["session"]
    assert session["blacklisted_skills"] == ["skill-x", "skill-a"]
    assert session["blacklisted_intents"] == ["i.b"]
    assert message == before


def test_ovos_policy_creates_session_when_missing():
    c = client(metadata={"skill_blacklist": ["s"]})
    decision = OVOSAgentPolicy().review(c, {"type": "t", "data": {}})
    assert decision.message["context"]["session"]["blacklisted_skills"] == ["s"]


class Boom(BasePolicy):
    name = "boom"

    def review(self, client, message):
        raise RuntimeError("bug")

    def review_binary(self, client, bin_type, metadata):
        raise RuntimeError("bug")


class Tagger(BasePolicy):
    name = "tagger"

    def review(self, client, message):
        message["context"]["tag"] = self.config.get("tag", "t")
        return PolicyDecision.allow(message)


class Recorder(BasePolicy):
    name = "recorder"

    def __init__(self, config=None):
        super().__init__(config)
        self.seen = []

    def review(self, client, message):
        self.seen.append(message)
        return PolicyDecision.allow()


def loader_for(table):
    def load(name):
        if name not in table:
            raise LookupError(name)
        return table[name]

    return load


def test_exception_in_mandatory_policy_denies():
    chain = build_policy_chain([PolicyEntry("boom")], loader=loader_for({"boom": Boom}))
    assert chain.review(client(), bus()).code == "policy_error"
    assert chain.review_binary(client(), BinaryType.FILE).code == "policy_error"


def test_exception_in_optional_policy_is_skipped():
    entries = [PolicyEntry("boom", optional=True)]
    chain = build_policy_chain(entries, loader=loader_for({"boom": Boom}))
    assert chain.review(client(), bus()).allowed
    assert chain.review_binary(client(), BinaryType.FILE).allowed


def test_wrong_return_type_is_a_policy_error():
    class Sloppy(BasePolicy):
        name = "sloppy"

        def review(self, client, message):
            return True

    chain = PolicyChain([ChainLink(MessageTypeACLPolicy()), ChainLink(Sloppy())])
    assert chain.review(client(), bus()).code == "policy_error"


def test_mutations_flow_to_later_policies():
    recorder = Recorder()
    table = {"tagger": Tagger, "recorder": lambda cfg: recorder}
    entries = [PolicyEntry("tagger", {"tag": "x"}), PolicyEntry("recorder")]
    decision = build_policy_chain(entries, loader=loader_for(table)).review(client(), bus())
    assert recorder.seen[0]["context"]["tag"] == "x"
    assert decision.message["context"]["tag"] == "x"


def test_denial_stops_the_chain():
    recorder = Recorder()
    entries = [PolicyEntry("recorder")]
    chain = build_policy_chain(entries, loader=loader_for({"recorder": lambda cfg: recorder}))
    chain.review(client(), bus("speak"))
    assert recorder.seen == []


def test_missing_plugin_installs_deny_all():
    chain = build_policy_chain([PolicyEntry("not-installed")])
    assert chain.degraded_reason
    assert chain.names == ["deny-all"]
    assert chain.review(client(is_admin=True), bus()).code == "policy_chain_unavailable"
    assert chain.review_binary(client(), BinaryType.FILE).code == "policy_chain_unavailable"


def test_failing_constructor_installs_deny_all():
    def factory(cfg):
        raise ValueError("bad config")

    chain = build_policy_chain([PolicyEntry("x")], loader=loader_for({"x": factory}))
    assert chain.review(client(), bus()).code == "policy_chain_unavailable"


def test_missing_optional_plugin_is_skipped():
    chain = build_policy_chain([PolicyEntry("not-installed", optional=True)])
    assert chain.names == ["message-type-acl", "default-session"]
    assert chain.review(client(), bus()).allowed


def test_review_current_fails_closed_on_lookup_error():
    def broken():
        raise StoreError("db down")

    assert default_chain().review_current(broken, bus()).code == "policy_error"
    assert default_chain().review_binary_current(broken, BinaryType.FILE).code == "policy_error"


def test_review_current_denies_deleted_client():
    assert default_chain().review_current(lambda: None, bus()).code == "client_unknown"


def test_grants_take_effect_on_next_message(tmp_path):
    store = SQLiteClientStore(tmp_path / "c.db")
    c = store.create(api_key="sat", allowed_types=[])
    chain = default_chain()

    def lookup():
        return store.get_by_access_key("sat")

    assert chain.review_current(lookup, bus()).code == "acl_disallowed_type"
    store.update(c.client_id, allowed_types=["recognizer_loop:utterance"])
    assert chain.review_current(lookup, bus()).allowed
    store.delete(c.client_id)
    assert chain.review_current(lookup, bus()).code == "client_unknown"
    store.close()


def test_observe_errors_are_contained():
    seen = []

    class Explodes(BasePolicy):
        name = "explodes"

        def observe(self, client, message):
            raise RuntimeError("x")

    class Watches(BasePolicy):
        name = "watches"

        def observe(self, client, message):
            seen.append(message["type"])

    chain = PolicyChain([ChainLink(Explodes()), ChainLink(Watches())])
    chain.observe(client(), bus())
    assert seen == ["recognizer_loop:utterance"]


def test_denied_message_shape():
    decision = PolicyDecision.deny("acl_disallowed_type", "nope", {"hint": 1})
    msg = policy_denied_message(decision, denied_type="speak", peer="sat::abc")
    assert msg == {
        "type": "hive.policy.denied",
        "data": {
            "denied_type": "speak",
            "code": "acl_disallowed_type",
            "reason": "nope",
            "data": {"hint": 1},
        },
        "context": {"source": "hivemind-core", "destination": "sat::abc"},
    }
    binary = policy_denied_message(
        decision, denied_type="binary", peer="p", bin_type=BinaryType.RAW_AUDIO
    )
    assert binary["data"]["bin_type"] == 1


def test_denied_message_needs_a_denial():
    with pytest.raises(ValueError):
        policy_denied_message(PolicyDecision.allow(), denied_type="x", peer="p")
    with pytest.raises(ValueError):
        PolicyDecision(False)


@pytest.mark.parametrize(
    ("msg_type", "fields", "code"),
    [
        ("broadcast", {"is_admin": False}, "broadcast_forbidden"),
        ("broadcast", {"is_admin": True, "can_broadcast": False}, "broadcast_forbidden"),
        ("broadcast", {"is_admin": True}, None),
        ("propagate", {"can_propagate": False}, "propagate_forbidden"),
        ("cascade", {"can_propagate": False}, "propagate_forbidden"),
        ("propagate", {}, None),
        ("escalate", {"can_escalate": False}, "escalate_forbidden"),
        ("query", {"can_escalate": False}, "escalate_forbidden"),
        ("escalate", {}, None),
        ("bus", {"can_escalate": False, "can_propagate": False}, None),
    ],
)
def test_envelope_permissions(msg_type, fields, code):
    from hivemind_hub.policy import check_envelope
    from hivemind_proto._types import MessageType

    decision = check_envelope(client(**fields), MessageType(msg_type))
    assert decision.allowed is (code is None)
    assert decision.code == (code or "")
