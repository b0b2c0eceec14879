"""Hub-to-hub links on loopback: a child hub relays to its parent's agent; rings do not amplify.

The parent's agent is the persona agent, whose LLM provider is replaced by
``FakeChatProvider``: a test double of the external OpenAI-compatible
provider (no provider is reachable from here), served by a real hypercorn on
127.0.0.1.
"""

from __future__ import annotations

import trio
from hivemind_hub.agents import PersonaAgent
from hivemind_proto import HiveMessage, MessageType, Profile, bus_message
from hivemind_proto.trio import SatelliteIdentity, open_hive
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .hubkit import PASSWORD, UTT, hub_config, running_hub, wait_for


class FakeChatProvider:
    """Test double of an external OpenAI-compatible chat-completions provider."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.app = Starlette(
            routes=[Route("/v1/chat/completions", self.complete, methods=["POST"])]
        )

    async def complete(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.requests.append(body)
        question = body["messages"][-1]["content"]
        return JSONResponse(
            {"choices": [{"message": {"role": "assistant", "content": f"answer to: {question}"}}]}
        )

    async def serve(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        config = HypercornConfig()
        config.bind = ["127.0.0.1:0"]
        config.accesslog = config.errorlog = None
        await hypercorn_serve(self.app, config, task_status=task_status)


def satellite(key: str, session: str) -> SatelliteIdentity:
    return SatelliteIdentity(
        access_key=key, password=PASSWORD, useragent="LinkSat", session_id=session, site_id="attic"
    )


def linked_config(tmp, parent_port: int, key: str):
    return hub_config(
        tmp,
        upstream={
            "enabled": True,
            "host": "127.0.0.1",
            "port": parent_port,
            "key": key,
            "password": PASSWORD,
            "require_noise": True,
        },
    )


async def test_child_hub_reaches_the_parents_agent(tmp_path) -> None:
    provider = FakeChatProvider()
    (tmp_path / "p").mkdir()
    (tmp_path / "c").mkdir()
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(provider.serve)
            base_url = binds[0].rstrip("/") + "/v1"
            persona = PersonaAgent({"base_url": base_url, "model": "fake"})
            async with running_hub(tmp_path / "p", agent=persona) as parent:
                parent.hub.store.create(
                    api_key="child-key", name="child", password=PASSWORD, allowed_types=[UTT]
                )
                config = linked_config(tmp_path / "c", parent.port, "child-key")
                async with running_hub(tmp_path / "c", config=config) as child:
                    child.hub.store.create(
                        api_key="sat-key", name="sat", password=PASSWORD, allowed_types=[UTT]
                    )
                    await wait_for(lambda: child.hub.router.upstream_peer is not None, 30)
                    await wait_for(lambda: parent.hub.live, 10)
                    assert next(iter(parent.hub.live)).startswith("HiveMindHub-")
                    url = f"ws://127.0.0.1:{child.port}"
                    async with open_hive(url, satellite("sat-key", "q1")) as sat:
                        question = bus_message(UTT, {"utterances": ["how far is the moon"]}, {})
                        query = HiveMessage(
                            MessageType.QUERY, HiveMessage(MessageType.BUS, question)
                        )
                        await sat.send(query)
                        answer = await sat.receive(timeout=20)
            nursery.cancel_scope.cancel()
    assert answer.msg_type is MessageType.QUERY
    assert answer.metadata["is_response"] is True
    assert answer.metadata["responder_peer"] == parent.hub.identity.node_id
    assert answer.inner.payload["type"] == "speak"
    assert answer.inner.payload["data"]["utterance"] == "answer to: how far is the moon"
    assert provider.requests[0]["messages"][-1]["content"] == "how far is the moon"


async def test_link_between_our_hubs_uses_noise(tmp_path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "c").mkdir()
    with trio.fail_after(60):
        async with running_hub(tmp_path / "p") as parent:
            parent.hub.store.create(api_key="child-key", name="child", password=PASSWORD)
            config = linked_config(tmp_path / "c", parent.port, "child-key")
            async with running_hub(tmp_path / "c", config=config) as child:
                await wait_for(lambda: parent.hub.live, 30)
                # The parent sees one connection from the child: pin what it agreed.
                [live] = parent.hub.live.values()
                channel = live.link
                assert channel.handshake.profile is Profile.NOISE
                expected = child.hub.identity.noise.public.hex()
                assert channel.handshake.remote_static == expected


async def test_ring_of_links_does_not_amplify(tmp_path) -> None:
    """X links to Y and Y to X; one PROPAGATE reaches Y's satellite a bounded number of times."""
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    received: list[HiveMessage] = []
    echoed: list[HiveMessage] = []
    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            x_port = await _reserve_port()
            y_port = await _reserve_port()
            x_cfg = _ring_config(tmp_path / "x", x_port, y_port, "x-at-y")
            y_cfg = _ring_config(tmp_path / "y", y_port, x_port, "y-at-x")
            async with (
                running_hub(tmp_path / "x", config=x_cfg) as x,
                running_hub(tmp_path / "y", config=y_cfg) as y,
            ):
                x.hub.store.create(api_key="y-at-x", name="y", password=PASSWORD)
                x.hub.store.create(api_key="sx", name="sx", password=PASSWORD)
                y.hub.store.create(api_key="x-at-y", name="x", password=PASSWORD)
                y.hub.store.create(api_key="sy", name="sy", password=PASSWORD)
                await wait_for(
                    lambda: x.hub.router.upstream_peer and y.hub.router.upstream_peer, 60
                )
                await wait_for(lambda: len(x.hub.live) == 1 and len(y.hub.live) == 1, 30)
                async with (
                    open_hive(f"ws://127.0.0.1:{x_port}", satellite("sx", "sx1")) as sx,
                    open_hive(f"ws://127.0.0.1:{y_port}", satellite("sy", "sy1")) as sy,
                ):
                    # Both satellites registered (their HELLO processed) before sending.
                    await wait_for(lambda: len(x.hub.live) == 2 and len(y.hub.live) == 2, 30)
                    nursery.start_soon(_collect, sy, received)
                    nursery.start_soon(_collect, sx, echoed)
                    inner = HiveMessage(MessageType.BUS, bus_message("ring.test", {"n": 1}))
                    await sx.send(HiveMessage(MessageType.PROPAGATE, inner))
                    await wait_for(lambda: received, 10)
                    await trio.sleep(2.0)  # the bounded observation window
                    nursery.cancel_scope.cancel()
    assert 1 <= len(received) <= 2, received
    assert all(m.msg_type is MessageType.PROPAGATE for m in received)
    assert echoed == []
    x_node, y_node = x.hub.identity.node_id, y.hub.identity.node_id
    for message in received:
        sources = [hop.source for hop in message.route]
        assert x_node in sources
        assert y_node in sources


async def _collect(client, sink: list) -> None:
    while True:
        sink.append(await client.receive())


async def _reserve_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ring_config(tmp, own_port: int, other_port: int, key: str):
    config = linked_config(tmp, other_port, key)
    raw = dict(config.raw)
    raw["network_protocol"] = {"hivemind-websocket-plugin": {"host": "127.0.0.1", "port": own_port}}
    from hivemind_hub.config import parse_config

    return parse_config(raw)
