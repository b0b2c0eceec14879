"""Policies read one shared read-only view; none can change the caller's message."""

from __future__ import annotations

import copy
import json

import pytest
from hivemind_hub.policy import (
    BasePolicy,
    ChainLink,
    MessageTypeACLPolicy,
    PolicyChain,
    PolicyDecision,
    ReadOnlyMessageError,
    freeze,
    thaw,
)

from .test_policy import bus, client


class InPlaceTagger(BasePolicy):
    """Edits its argument in place and returns it (the old copy-per-policy contract)."""

    name = "in-place-tagger"

    def __init__(self, return_it: bool = True) -> None:
        super().__init__()
        self.return_it = return_it
        self.calls = 0

    def review(self, client, message):
        self.calls += 1
        message["context"]["tag"] = "t"
        message["data"].setdefault("extra", []).append(1)
        return PolicyDecision.allow(message if self.return_it else None)


class Reader(BasePolicy):
    name = "reader"

    def __init__(self) -> None:
        super().__init__()
        self.seen: list = []
        self.observed: list = []

    def review(self, client, message):
        self.seen.append(message)
        return PolicyDecision.allow()

    def observe(self, client, message):
        self.observed.append(message)


class Scribbler(BasePolicy):
    name = "scribbler"

    def observe(self, client, message):
        message["context"]["scribbled"] = True


def test_view_refuses_every_write_and_copies_to_plain_data() -> None:
    view = freeze({"type": "x", "data": {"items": [1, {"a": 2}]}, "context": {}})
    with pytest.raises(ReadOnlyMessageError):
        view["type"] = "y"
    with pytest.raises(ReadOnlyMessageError):
        view["data"]["items"].append(3)
    with pytest.raises(ReadOnlyMessageError):
        view["data"]["items"][1].update(b=1)
    with pytest.raises(ReadOnlyMessageError):
        view.setdefault("new", {})
    assert isinstance(view, dict)
    assert isinstance(view["data"]["items"], list)
    assert json.loads(json.dumps(view)) == view
    for plain in (copy.deepcopy(view), thaw(view)):
        plain["data"]["items"][1]["b"] = 1
        assert type(plain["data"]) is dict
        assert "b" not in view["data"]["items"][1]


def test_in_place_policy_cannot_change_the_callers_message() -> None:
    tagger = InPlaceTagger()
    reader = Reader()
    chain = PolicyChain([ChainLink(MessageTypeACLPolicy()), ChainLink(tagger), ChainLink(reader)])
    original = bus()
    before = copy.deepcopy(original)
    decision = chain.review(client(), original)
    assert decision.allowed
    assert decision.message["context"]["tag"] == "t"
    assert reader.seen[0]["context"]["tag"] == "t"
    assert original == before
    # Once known to edit in place, the policy is called once per message.
    chain.review(client(), original)
    assert tagger.calls == 3
    assert original == before


def test_unreturned_in_place_edit_reaches_nobody() -> None:
    reader = Reader()
    chain = PolicyChain([ChainLink(InPlaceTagger(return_it=False)), ChainLink(reader)])
    original = bus()
    decision = chain.review(client(), original)
    assert decision.allowed
    assert "tag" not in reader.seen[0]["context"]
    assert "tag" not in decision.message["context"]
    assert "tag" not in original["context"]


def test_readers_share_one_view_without_copies() -> None:
    first, second = Reader(), Reader()
    chain = PolicyChain([ChainLink(first), ChainLink(second)])
    chain.review(client(), bus())
    assert first.seen[0] is second.seen[0]


def test_observe_cannot_change_the_emitted_message() -> None:
    reader = Reader()
    chain = PolicyChain([ChainLink(Scribbler()), ChainLink(reader)])
    out = bus()
    chain.observe(client(), out)
    chain.observe(client(), out)
    assert "scribbled" not in out["context"]
    assert len(reader.observed) == 2
    assert "scribbled" not in reader.observed[0]["context"]
