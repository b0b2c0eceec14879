"""The released HTTP polling client (hivemind-bus-client 0.4.4) against our hub.

What the released ``HiveMindHTTPClient`` does, and why it needs one thing
from the hub: its poll loop hands each received frame to the protocol twice,
once by calling ``protocol.handle_<type>`` directly and once through the
handlers that ``HiveMindSlaveProtocol.bind`` registered with ``client.on``.
So a hub offer makes it post two password handshakes, each from a fresh
``PasswordHandShake`` (only the second is kept), before it polls again. The
hub re-keys on the second one; if both answers were delivered the client
would derive its key from the first answer, encrypt its HELLO with a key the
hub no longer holds and be closed with 1008. The transport therefore
withdraws an answer that a later handshake superseded before the client
fetched it. The doubled dispatch also posts the HELLO twice (harmless: one
registration) and injects every BUS message into the client's local bus
twice, which no hub can prevent (``test_released_http_client_dispatches_twice``).

Everything runs on 127.0.0.1 with port 0: the real OVOS message bus from the
interop virtualenv, a bus participant answering with ``Message.reply``, our
hub with the HTTP transport, and the client driven by ``interop/http_satellite.py``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest
import trio
from hivemind_proto import HandshakeComplete, build_authorization

from .hubkit import PASSWORD, UTT, hub_config, running_hub, wait_for
from .test_e2e_interop import real_ovos_bus
from .test_http_transport import KEY, PollingSatellite, http_config

HERE = Path(__file__).parent / "interop"
ACCESS_KEY = "e2eh0a1b2c3d4e5f60718293a4b5c6d7"
OTHER_KEY = "e2eh1f2e3d4c5b6a79889706152433425"
UTTERANCE = "what does the polling walrus say qz42"


async def run_http_satellite(py: str, env: dict, request: dict, seconds: float = 60) -> dict:
    with trio.fail_after(seconds):
        done = await trio.run_process(
            [py, str(HERE / "http_satellite.py"), json.dumps(request)],
            env=env,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    lines = [line for line in done.stdout.decode().splitlines() if line.startswith("{")]
    assert lines, done.stderr.decode()[-2000:]
    return json.loads(lines[-1])


@pytest.mark.interop
async def test_released_http_client_dispatches_twice(interop_python) -> None:
    """The client's own behaviour, with no hub at all: one BUS frame, two injections."""
    got = await run_http_satellite(
        interop_python,
        {},
        {"mode": "dispatch", "key": ACCESS_KEY, "password": PASSWORD, "port": 9},
    )
    assert got["handled"] == [{"utterance": "once"}]
    assert got["local_bus_speak"] == [{"utterance": "once"}] * 2


async def test_superseded_handshake_answer_is_withdrawn(tmp_path) -> None:
    """Two password handshakes before a poll: only the answer to the last one is served."""
    with trio.fail_after(60):
        async with running_hub(tmp_path, config=http_config(tmp_path)) as serving:
            serving.hub.store.create(
                api_key=KEY, name="poll", password=PASSWORD, allowed_types=[UTT]
            )
            base = f"http://127.0.0.1:{serving.http_port}"
            async with httpx.AsyncClient(base_url=base) as http:
                first, second = PollingSatellite(http), PollingSatellite(http)
                assert await first.post("/connect") == {"status": "Connected"}
                opening = (await http.get("/get_messages", params=first.params)).json()
                assert len(opening["messages"]) == 2  # HELLO and the offer
                for sat in (first, second):
                    for frame in opening["messages"]:
                        sat.conn.receive_frame(frame)
                    [material] = sat.conn.data_to_send()
                    sent = await sat.post("/send_message", data={"message": material})
                    assert sent == {"status": "message sent"}
                answers = (await http.get("/get_messages", params=second.params)).json()
                [answer] = answers["messages"]
                events = second.conn.receive_frame(answer)
                assert any(isinstance(e, HandshakeComplete) for e in events)
                [hello] = second.conn.data_to_send()
                sent = await second.post("/send_message", data={"message": hello})
                assert sent == {"status": "message sent"}
                await wait_for(lambda: len(serving.hub.live) == 1)


async def test_binary_frames_are_never_offered_over_http(tmp_path) -> None:
    config = hub_config(
        tmp_path,
        binarize=True,
        network_protocol={"hivemind-http-plugin": {"host": "127.0.0.1", "port": 0}},
    )
    assert config.binarize
    with trio.fail_after(60):
        async with running_hub(tmp_path, config=config) as serving:
            serving.hub.store.create(api_key=KEY, name="poll", password=PASSWORD)
            base = f"http://127.0.0.1:{serving.http_port}"
            async with httpx.AsyncClient(base_url=base) as http:
                sat = PollingSatellite(http)
                assert await sat.post("/connect") == {"status": "Connected"}
                opening = (await http.get("/get_messages", params=sat.params)).json()
                [hello, offer] = [json.loads(frame) for frame in opening["messages"]]
                assert hello["msg_type"] == "hello"
                assert offer["msg_type"] == "shake"
                assert offer["payload"]["binarize"] is False


@pytest.mark.interop
@pytest.mark.slow
async def test_released_http_client_through_real_ovos_bus(tmp_path, caplog, interop_python) -> None:
    py = interop_python
    caplog.set_level(logging.INFO)
    with trio.fail_after(240):
        async with real_ovos_bus(py, tmp_path / "home") as (env, agent):
            config = http_config(tmp_path)
            async with running_hub(tmp_path, config=config, agent=agent) as serving:
                with trio.fail_after(20):
                    await agent.connected.wait()
                await run_scenario(py, env, serving)
    logs = caplog.text
    assert "Running on http://127.0.0.1" in logs  # the capture did see the hub's INFO lines
    for secret in (
        PASSWORD,
        ACCESS_KEY,
        OTHER_KEY,
        UTTERANCE,
        build_authorization("InteropHttpSat", ACCESS_KEY),
    ):
        assert secret not in logs


async def run_scenario(py: str, env: dict, serving) -> None:
    store = serving.hub.store
    store.create(api_key=ACCESS_KEY, name="poll", password=PASSWORD, allowed_types=[UTT])
    store.create(api_key=OTHER_KEY, name="other", password=PASSWORD, allowed_types=[UTT])
    base = {"port": serving.http_port, "key": ACCESS_KEY, "password": PASSWORD}
    chat = await run_http_satellite(
        py, env, {**base, "mode": "chat", "msg_type": UTT, "utterance": UTTERANCE}
    )
    assert chat["connect"] == {"status": "Connected"}
    assert chat["handshake"], chat
    assert chat["emit"] == {"status": "message sent"}
    # The reply made with Message.reply reached the asker's handler exactly once...
    assert chat["reply_ok"], chat
    assert chat["handled"] == [{"utterance": "reply from the bus"}]
    # ... while the client itself injected it twice into its local bus.
    assert chat["local_bus_speak"] == [{"utterance": "reply from the bus"}] * 2
    # The hub accepted every frame: /connect, the doubled handshake and HELLO, the utterance.
    paths = [a["path"] for a in chat["answers"]]
    assert paths == ["/connect"] + ["/send_message"] * 5
    assert all(a["status"] == 200 for a in chat["answers"]), chat["answers"]
    assert chat["poll_errors"] == []
    assert chat["poller_alive"]
    assert len(serving.hub.live) == 1  # one registration despite two HELLOs
    # A wrong password is refused with 1008 and never registers.
    wrong = await run_http_satellite(
        py, env, {**base, "mode": "refused", "key": OTHER_KEY, "password": "wrong-password"}
    )
    assert not wrong["handshake"]
    refusals = [a for a in wrong["answers"] if a["path"] == "/send_message"]
    assert refusals[0] == {
        "path": "/send_message",
        "status": 400,
        "body": {"error": "protocol error", "code": 1008},
    }
    assert all(a["body"] == {"error": "Client is not connected"} for a in refusals[1:])
    assert len(serving.hub.live) == 1
