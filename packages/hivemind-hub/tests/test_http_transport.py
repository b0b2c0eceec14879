"""The HTTP polling transport (spec §1.2) over a real hypercorn on 127.0.0.1."""

from __future__ import annotations

import json
import os

import httpx
import trio
from hivemind_proto import (
    Connection,
    HandshakeComplete,
    HiveMessage,
    MessageReceived,
    MessageType,
    Role,
    SatelliteSettings,
    build_authorization,
    bus_message,
)

from .hubkit import PASSWORD, UTT, hub_config, running_hub, wait_for
from .test_serve import RecordingAgent

KEY = "http0123456789abcdef0123456789ab"


def http_config(tmp, **limits):
    return hub_config(
        tmp,
        network_protocol={"hivemind-http-plugin": {"host": "127.0.0.1", "port": 0}},
        limits=limits or {},
    )


class PollingSatellite:
    """Our sans-IO satellite speaking the polling transport."""

    def __init__(self, http: httpx.AsyncClient, key: str = KEY, session: str = "http-s1"):
        self.http = http
        self.params = {"authorization": build_authorization("PollSat", key)}
        settings = SatelliteSettings(
            password=PASSWORD, hello={"pubkey": None, "session": {"session_id": session}}
        )
        self.conn = Connection(Role.SATELLITE, settings, rng=os.urandom)

    async def post(self, path: str, **kw) -> dict:
        return (await self.http.post(path, params=self.params, **kw)).json()

    async def poll(self) -> list:
        reply = (await self.http.get("/get_messages", params=self.params)).json()
        events = []
        for frame in reply.get("messages", []):
            events += self.conn.receive_frame(frame)
        for frame in self.conn.data_to_send():
            assert (await self.post("/send_message", data={"message": frame}))["status"]
        return events

    async def handshake(self) -> None:
        assert await self.post("/connect") == {"status": "Connected"}
        with trio.fail_after(10):
            while not any(isinstance(e, HandshakeComplete) for e in await self.poll()):  # noqa: ASYNC110 (polling is the transport)
                await trio.sleep(0.05)

    async def send(self, message: HiveMessage) -> dict:
        self.conn.send(message)
        [frame] = self.conn.data_to_send()
        return await self.post("/send_message", data={"message": frame})

    async def receive(self) -> HiveMessage:
        with trio.fail_after(10):
            while True:
                for event in await self.poll():
                    if isinstance(event, MessageReceived):
                        return event.message
                await trio.sleep(0.05)


async def test_polling_round_trip(tmp_path) -> None:
    agent = RecordingAgent()
    with trio.fail_after(60):
        async with running_hub(tmp_path, config=http_config(tmp_path), agent=agent) as serving:
            serving.hub.store.create(
                api_key=KEY, name="poll", password=PASSWORD, allowed_types=[UTT]
            )
            assert serving.http_port
            base = f"http://127.0.0.1:{serving.http_port}"
            async with httpx.AsyncClient(base_url=base) as http:
                sat = PollingSatellite(http)
                await sat.handshake()
                await wait_for(lambda: serving.hub.live)
                [peer] = serving.hub.live
                utt = bus_message(UTT, {"utterances": ["poll me"]}, {})
                assert await sat.send(HiveMessage(MessageType.BUS, utt)) == {
                    "status": "message sent"
                }
                await wait_for(lambda: agent.of_type(UTT))
                assert agent.of_type(UTT)[0]["context"]["source"] == peer
                agent.host.deliver(
                    bus_message("speak", {"utterance": "polled"}, {"destination": peer})
                )
                reply = await sat.receive()
                assert reply.payload["data"]["utterance"] == "polled"
                denied = await sat.send(HiveMessage(MessageType.BUS, bus_message("no.grant")))
                assert denied == {"status": "message sent"}
                notice = await sat.receive()
                assert notice.payload["type"] == "hive.policy.denied"
                assert await sat.post("/disconnect") == {"status": "Disconnected"}
                assert await sat.post("/disconnect") == {"error": "Already Disconnected"}
                await wait_for(lambda: not serving.hub.live)


async def test_polling_refusals(tmp_path) -> None:
    with trio.fail_after(60):
        async with running_hub(tmp_path, config=http_config(tmp_path)) as serving:
            serving.hub.store.create(api_key=KEY, name="poll", password=PASSWORD)
            base = f"http://127.0.0.1:{serving.http_port}"
            async with httpx.AsyncClient(base_url=base) as http:
                missing = await http.post("/connect")
                assert missing.json() == {"error": "Missing authorization"}
                unknown = PollingSatellite(http, key="nobody")
                assert (await unknown.post("/connect"))["error"] == "invalid access key"
                sat = PollingSatellite(http)
                not_connected = await sat.post("/send_message", data={"message": "{}"})
                assert not_connected == {"error": "Client is not connected"}
                await sat.handshake()
                cleartext = HiveMessage(MessageType.BUS, bus_message(UTT)).to_dict()
                refused = await sat.post("/send_message", data={"message": json.dumps(cleartext)})
                assert refused["error"] == "protocol error"
                assert refused["code"] == 1008
                assert not serving.hub.live


async def test_polling_wrong_password_never_registers(tmp_path) -> None:
    with trio.fail_after(60):
        async with running_hub(tmp_path, config=http_config(tmp_path)) as serving:
            serving.hub.store.create(api_key=KEY, name="poll", password="another-password-xyz")
            base = f"http://127.0.0.1:{serving.http_port}"
            async with httpx.AsyncClient(base_url=base) as http:
                sat = PollingSatellite(http)
                assert await sat.post("/connect") == {"status": "Connected"}
                reply = (await http.get("/get_messages", params=sat.params)).json()
                for frame in reply["messages"]:
                    sat.conn.receive_frame(frame)
                [material] = sat.conn.data_to_send()
                refused = await sat.post("/send_message", data={"message": material})
                assert refused == {"error": "protocol error", "code": 1008}
                assert not serving.hub.live
