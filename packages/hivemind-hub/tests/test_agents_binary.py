"""Agent loading, the persona agent's reply shape, and the binary hook (FILE names sanitised)."""

from __future__ import annotations

import os

import pytest
import trio
from hivemind_hub.agents import NullAgent, OVOSBusAgent, PersonaAgent, load_agent, reply_to
from hivemind_hub.binary import (
    FileDropHandler,
    NullBinaryHandler,
    load_binary_handler,
    sanitize_file_name,
)
from hivemind_proto import BinaryType, HiveMessage, MessageType
from hivemind_proto.trio import SatelliteIdentity, open_hive

from .hubkit import PASSWORD, UTT, running_hub, wait_for
from .test_serve import RecordingAgent


def test_agents_load_from_entry_points() -> None:
    ovos = load_agent(
        {
            "module": "hivemind-ovos-agent-plugin",
            "hivemind-ovos-agent-plugin": {"host": "127.0.0.1", "port": 8999},
        }
    )
    assert isinstance(ovos, OVOSBusAgent)
    assert ovos.url == "ws://127.0.0.1:8999/core"
    persona = load_agent(
        {
            "module": "hivemind-persona-agent-plugin",
            "hivemind-persona-agent-plugin": {
                "base_url": "http://127.0.0.1:1/v1",
                "api_key": "sk-secret",
            },
        }
    )
    assert isinstance(persona, PersonaAgent)
    assert "sk-secret" not in repr(persona)
    assert isinstance(load_agent({"module": None}), NullAgent)
    with pytest.raises(LookupError):
        load_agent({"module": "no-such-agent"})


def test_reply_swaps_source_and_destination() -> None:
    asked = {
        "type": UTT,
        "data": {},
        "context": {
            "source": "ua::1::a::s",
            "destination": "skills",
            "session": {"session_id": "s"},
        },
    }
    reply = reply_to(asked, "speak", {"utterance": "x"})
    assert reply["context"]["destination"] == "ua::1::a::s"
    assert reply["context"]["source"] == "skills"
    assert reply["context"]["session"] == {"session_id": "s"}


def test_persona_queue_is_bounded() -> None:
    persona = PersonaAgent({"queue_size": 2})
    message = {"type": UTT, "data": {"utterances": ["a"]}, "context": {}}
    assert [persona.emit(message) for _ in range(3)] == [True, True, False]
    assert persona.dropped == 1
    assert persona.emit({"type": "speak"}) is False


def test_ovos_queue_is_bounded() -> None:
    agent = OVOSBusAgent({"queue_size": 1})
    assert agent.emit({"type": "a"}) is True
    assert agent.emit({"type": "b"}) is False
    assert agent.dropped == 1


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("notes.txt", "notes.txt"),
        ("../../etc/passwd", "passwd"),
        ("/abs/path/photo.jpg", "photo.jpg"),
        ("..\\..\\win.ini", "win.ini"),
        ("..", None),
        (".", None),
        ("", None),
        ("dir/", None),
        (".bashrc", None),
        ("bad\x00name", None),
        ("new\nline", None),
        ("x" * 300, None),
        (42, None),
    ],
)
def test_sanitize_file_name(name, expected) -> None:
    assert sanitize_file_name(name) == expected


def test_binary_handlers_load() -> None:
    assert isinstance(load_binary_handler({"module": None}), NullBinaryHandler)
    drop = load_binary_handler(
        {"module": "hivemind-file-drop", "hivemind-file-drop": {"directory": "/tmp/x"}}
    )
    assert isinstance(drop, FileDropHandler)
    with pytest.raises(LookupError):
        load_binary_handler({"module": "missing"})


async def test_file_upload_lands_under_a_safe_name(tmp_path) -> None:
    inbox = tmp_path / "inbox"
    handler = FileDropHandler({"directory": str(inbox)})
    with trio.fail_after(30):
        async with running_hub(tmp_path, agent=RecordingAgent(), binary=handler) as serving:
            serving.hub.store.create(api_key="f1", name="f", password=PASSWORD, allowed_types=[UTT])
            identity = SatelliteIdentity(access_key="f1", password=PASSWORD, session_id="f-s")
            async with open_hive(f"ws://127.0.0.1:{serving.port}", identity) as sat:
                data = os.urandom(5000)
                for name in ("../../escape.bin", ".hidden", "report.pdf"):
                    await sat.send(
                        HiveMessage(
                            MessageType.BINARY,
                            data,
                            metadata={"file_name": name},
                            bin_type=BinaryType.FILE,
                        )
                    )
                await wait_for(lambda: len(handler.saved) == 2)
    assert sorted(p.name for p in inbox.iterdir()) == ["escape.bin", "report.pdf"]
    assert (inbox / "report.pdf").read_bytes() == data
    assert not (tmp_path / "escape.bin").exists()


async def test_unknown_key_reported_to_the_agent(tmp_path) -> None:
    agent = RecordingAgent()
    with trio.fail_after(30):
        async with running_hub(tmp_path, agent=agent) as serving:
            identity = SatelliteIdentity(access_key="nobody", password=PASSWORD)
            from hivemind_proto.trio import HiveRefused

            with pytest.raises(HiveRefused):
                async with open_hive(f"ws://127.0.0.1:{serving.port}", identity):
                    pytest.fail("unknown keys must be refused")
    [event] = agent.of_type("hive.client.connection.error")
    assert event["data"]["error"] == "invalid access key"
