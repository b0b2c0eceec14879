"""The hub-side room mode is off by default and labels every answer it sends."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import trio
from hivemind_rooms.hive.legacy import LEGACY_ANSWER, LEGACY_ASK, RoomBridgeAgent


class RecordingHost:
    """The agent's host: records what the agent delivers (the hub routes these)."""

    def __init__(self) -> None:
        self.identity = SimpleNamespace(node_id="hub-test-node")
        self.delivered: list[dict[str, Any]] = []

    def deliver(self, message: dict[str, Any]) -> None:
        self.delivered.append(message)


async def _ask(agent: RoomBridgeAgent, data: dict[str, Any]) -> dict[str, Any]:
    host = RecordingHost()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(agent.run, host)
            context = {"peer": "Sat::1::sat::s1", "source": "Sat::1::sat::s1"}
            assert agent.emit({"type": LEGACY_ASK, "data": data, "context": context})
            while not host.delivered:  # noqa: ASYNC110 (the host has no event)
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
    [message] = host.delivered
    assert message["type"] == LEGACY_ANSWER
    assert message["context"]["destination"] == "Sat::1::sat::s1"
    return message["data"]


async def test_mode_is_off_unless_enabled_and_the_refusal_is_labelled() -> None:
    agent = RoomBridgeAgent({"room_link": "hmroom://x", "payer_key": "payer-secret-1"})
    assert agent.enabled is False
    assert agent.emit({"type": "recognizer_loop:utterance", "data": {}}) is False
    data = await _ask(agent, {"question": "who?"})
    assert data["error"] == "the hub-side room mode is off on this hub"
    assert data["label"] == "verified by hub hub-test-node on behalf of this satellite"
    assert "payer-secret-1" not in repr(agent)


async def test_enabled_mode_refuses_without_an_accepted_room_or_question() -> None:
    agent = RoomBridgeAgent({"legacy_mode": True, "room_link": "not a link"})
    assert (await _ask(agent, {"question": "who?"}))["error"] == "this hub has no accepted room"
    agent = RoomBridgeAgent({"legacy_mode": True})
    data = await _ask(agent, {"question": ""})
    assert data["error"] == "a question is required"
    assert data["verified_by"] == "hub-test-node"
