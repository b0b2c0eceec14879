"""The hub over real websockets on loopback, with our own satellites."""

from __future__ import annotations

import os

import pytest
import trio
from hivemind_hub.identity import load_identity
from hivemind_proto import HiveMessage, MessageType, Profile, bus_message
from hivemind_proto.trio import HiveRefused, SatelliteIdentity, open_hive

from .hubkit import PASSWORD, UTT, running_hub, wait_for


class RecordingAgent:
    """A real in-process agent: records what the hub emits, answers via the hub."""

    name = "recording"
    answers_queries = False

    def __init__(self) -> None:
        self.emitted: list[dict] = []
        self.host = None
        self.got = trio.Event()

    def emit(self, message) -> bool:
        self.emitted.append(dict(message))
        self.got.set()
        return True

    async def run(self, host, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        self.host = host
        task_status.started()
        await trio.sleep_forever()

    def of_type(self, msg_type: str) -> list[dict]:
        return [m for m in self.emitted if m["type"] == msg_type]


def sat(key: str, session: str, noise: bool = False, password: str = PASSWORD):
    from hivemind_proto import NoiseIdentity, StaticKeypair

    return SatelliteIdentity(
        access_key=key,
        password=password,
        useragent="TestSat",
        site_id="kitchen",
        session_id=session,
        noise=NoiseIdentity(StaticKeypair.generate(os.urandom)) if noise else None,
        require_noise=noise,
    )


def utterance(text: str = "hello") -> HiveMessage:
    return HiveMessage(MessageType.BUS, bus_message(UTT, {"utterances": [text]}, {}))


def test_identity_is_stable_and_unique(tmp_path) -> None:
    first = load_identity(tmp_path / "a")
    again = load_identity(tmp_path / "a")
    other = load_identity(tmp_path / "b")
    assert first.node_id == again.node_id != other.node_id
    assert first.public_pem == again.public_pem
    assert first.public_pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert first.node_id != "master:0.0.0.0"
    assert (tmp_path / "a" / "hub_identity.pem").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("noise", [False, True], ids=["legacy", "noise"])
async def test_bus_round_trip_through_agent(tmp_path, noise: bool) -> None:
    agent = RecordingAgent()
    with trio.fail_after(30):
        async with running_hub(tmp_path, agent=agent) as serving:
            store = serving.hub.store
            store.create(api_key="k1", name="one", password=PASSWORD, allowed_types=[UTT])
            url = f"ws://127.0.0.1:{serving.port}"
            async with open_hive(url, sat("k1", "s-one", noise)) as client:
                expected = Profile.NOISE if noise else Profile.LEGACY_PASSWORD
                assert client.handshake.profile is expected
                assert client.hub_hello["node_id"] == serving.hub.identity.node_id
                await client.send(utterance())
                await wait_for(lambda: agent.of_type(UTT))
                [injected] = agent.of_type(UTT)
                peer = injected["context"]["peer"]
                assert peer == "TestSat::1::one::s-one"
                assert agent.of_type("hive.client.connect")[0]["context"]["source"] == peer
                reply = bus_message("speak", {"utterance": "hi"}, {"destination": peer})
                agent.host.deliver(reply)
                got = await client.receive(timeout=5)
                assert got.payload["type"] == "speak"
                assert got.payload["context"]["source"] == "hive"
            await wait_for(lambda: agent.of_type("hive.client.disconnect"))


async def test_wrong_password_and_deleted_client_refused(tmp_path) -> None:
    with trio.fail_after(30):
        async with running_hub(tmp_path, agent=RecordingAgent()) as serving:
            store = serving.hub.store
            rec = store.create(api_key="k1", name="one", password=PASSWORD, allowed_types=[UTT])
            url = f"ws://127.0.0.1:{serving.port}"
            with pytest.raises(HiveRefused):
                async with open_hive(url, sat("k1", "s1", password="not-the-password")):
                    pytest.fail("a wrong password must not connect")
            store.delete(rec.client_id)
            with pytest.raises(HiveRefused):
                async with open_hive(url, sat("k1", "s1")):
                    pytest.fail("a deleted client must not connect")


async def test_malformed_agent_message_does_not_stop_the_hub(tmp_path) -> None:
    agent = RecordingAgent()
    with trio.fail_after(30):
        async with running_hub(tmp_path, agent=agent) as serving:
            serving.hub.store.create(api_key="k1", name="one", password=PASSWORD)
            url = f"ws://127.0.0.1:{serving.port}"
            async with open_hive(url, sat("k1", "s-m")) as client:
                await wait_for(lambda: serving.hub.live)
                [peer] = serving.hub.live
                agent.host.deliver({"type": "speak", "data": [1], "context": {"destination": peer}})
                agent.host.deliver({"type": 7, "context": {"destination": peer}})
                agent.host.deliver(bus_message("speak", {"utterance": "ok"}, {"destination": peer}))
                got = await client.receive(timeout=5)
                assert got.payload["data"] == {"utterance": "ok"}


def test_channel_limits_follow_config(tmp_path) -> None:
    from hivemind_hub import ConfigError
    from hivemind_hub.serve import channel_limits
    from hivemind_proto.trio import SlowConsumerPolicy

    from .hubkit import hub_config

    limits = {
        "outbound_queue_size": 7,
        "handshake_timeout": 3.5,
        "slow_consumer": "drop",
        "rate_limit_messages_per_second": 9.0,
        "rate_limit_burst": 11,
    }
    got = channel_limits(hub_config(tmp_path, limits=limits))
    assert (got.outbound_queue, got.handshake_timeout, got.frames_per_second, got.burst) == (
        7,
        3.5,
        9.0,
        11,
    )
    assert got.slow_consumer is SlowConsumerPolicy.DROP
    assert channel_limits(hub_config(tmp_path)).slow_consumer is SlowConsumerPolicy.CLOSE
    with pytest.raises(ConfigError, match=r"limits\.slow_consumer"):
        hub_config(tmp_path, limits={"slow_consumer": "ignore"})
