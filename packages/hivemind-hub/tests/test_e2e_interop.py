"""End to end with released parts: hivemind-bus-client 0.4.4 -> our hub -> ovos-messagebus.

Everything runs on 127.0.0.1: the real OVOS message bus (``ovos-messagebus``
from the interop virtualenv, configured through a throwaway XDG tree), a bus
participant answering utterances with ``Message.reply``, our hub started with
``serve_hub`` on port 0, and released satellites driven by a script in the
interop virtualenv. The same run checks that the hub's INFO logs never hold
the password, the access key, its authorization token or the utterance.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
from hivemind_hub.agents import OVOSBusAgent
from hivemind_proto import build_authorization

from .hubkit import PASSWORD, UTT, running_hub, wait_for

pytestmark = [pytest.mark.interop, pytest.mark.slow]

HERE = Path(__file__).parent / "interop"
_spec = importlib.util.spec_from_file_location(
    "reference_peers", Path(__file__).resolve().parents[3] / "tools" / "reference_peers.py"
)
reference_peers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reference_peers)
free_port = reference_peers.free_port
write_bus_config = reference_peers.write_bus_config
xdg_env = reference_peers.xdg_env
ACCESS_KEY = "e2e0a1b2c3d4e5f60718293a4b5c6d7e"
OTHER_KEY = "e2e1f2e3d4c5b6a79889706152433425"
SECRET_UTTERANCE = "tell me about the purple walrus xq17"


async def wait_port(port: int, seconds: float = 30) -> None:
    with trio.fail_after(seconds):
        while True:
            try:
                stream = await trio.open_tcp_stream("127.0.0.1", port)
            except OSError:
                await trio.sleep(0.1)
                continue
            await stream.aclose()
            return


async def read_line(proc: trio.Process, seconds: float = 60) -> str:
    """Return the next line that is ours (``ready`` or JSON), skipping library log lines."""
    with trio.fail_after(seconds):
        while True:
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = await proc.stdout.receive_some(1)
                if not chunk:
                    return buf.decode().strip()
                buf += chunk
            line = buf.decode(errors="replace").strip()
            if line == "ready" or line.startswith("{"):
                return line


async def run_satellite(py: str, env: dict, request: dict, seconds: float = 90) -> dict:
    with trio.fail_after(seconds):
        done = await trio.run_process(
            [py, str(HERE / "bus_satellite.py"), json.dumps(request)],
            env=env,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    lines = done.stdout.decode().strip().splitlines()
    assert lines, done.stderr.decode()[-2000:]
    return json.loads(lines[-1])


async def stop(proc: trio.Process) -> None:
    """Terminate a child (kill after 5 s), reap it and close its pipes."""
    with trio.CancelScope(shield=True):
        if proc.returncode is None:
            proc.terminate()
            with trio.move_on_after(5):
                await proc.wait()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                await stream.aclose()


@asynccontextmanager
async def real_ovos_bus(py: str, root: Path) -> AsyncIterator[tuple[dict, OVOSBusAgent]]:
    """The released ``ovos-messagebus`` and the bus responder on a free loopback port.

    Yields the XDG environment of the interop processes and an (unconnected)
    ``OVOSBusAgent`` for the bus; both processes are stopped on exit.
    """
    bus_port = free_port()
    write_bus_config(root, bus_port)
    env = xdg_env(root)
    procs: list[trio.Process] = []
    try:
        bus = await trio.lowlevel.open_process(
            [str(Path(py).parent / "ovos-messagebus")],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append(bus)
        await wait_port(bus_port)
        responder = await trio.lowlevel.open_process(
            [py, str(HERE / "bus_responder.py"), str(bus_port)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        procs.append(responder)
        assert await read_line(responder) == "ready"
        yield env, OVOSBusAgent({"host": "127.0.0.1", "port": bus_port})
    finally:
        for proc in procs:
            await stop(proc)


async def test_released_satellite_through_real_ovos_bus(tmp_path, caplog, interop_python) -> None:
    py = interop_python
    caplog.set_level(logging.INFO)
    with trio.fail_after(240):
        async with (
            real_ovos_bus(py, tmp_path / "home") as (env, agent),
            running_hub(tmp_path, agent=agent) as serving,
        ):
            await run_scenario(py, env, tmp_path, serving, agent)
    logs = caplog.text
    assert "client 1 connected" in logs  # the capture did see the hub's INFO lines
    for secret in (
        PASSWORD,
        ACCESS_KEY,
        OTHER_KEY,
        SECRET_UTTERANCE,
        build_authorization("InteropSat", ACCESS_KEY),
    ):
        assert secret not in logs


async def run_scenario(py, env, tmp_path, serving, agent) -> None:
    store = serving.hub.store
    one = store.create(api_key=ACCESS_KEY, name="one", password=PASSWORD, allowed_types=[UTT])
    store.create(api_key=OTHER_KEY, name="two", password=PASSWORD, allowed_types=[UTT])
    with trio.fail_after(20):
        await agent.connected.wait()
    base = {"port": serving.port, "password": PASSWORD}
    stop_file = tmp_path / "stop"
    listener = await trio.lowlevel.open_process(
        [
            py,
            str(HERE / "bus_satellite.py"),
            json.dumps(
                {
                    **base,
                    "mode": "listen",
                    "key": OTHER_KEY,
                    "stop_file": str(stop_file),
                    "seconds": 120,
                }
            ),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert json.loads(await read_line(listener)) == {"ready": True}
        # The listener is registered (routable) before the other satellite speaks.
        await wait_for(lambda: len(serving.hub.live) == 1, 20)
        chat = await run_satellite(
            py,
            env,
            {
                **base,
                "mode": "chat",
                "key": ACCESS_KEY,
                "msg_type": UTT,
                "utterance": SECRET_UTTERANCE,
                "forbidden_type": "mycroft.volume.set",
            },
        )
        stop_file.write_text("done")
        seen = json.loads(await read_line(listener))
    finally:
        await stop(listener)
    # The reply made by the bus participant with Message.reply reached the asker...
    assert chat["speak_ok"], chat
    assert chat["speak"]["data"]["utterance"] == "reply from the bus"
    # ... and nobody else (client isolation).
    assert seen == {"speak_seen": []}
    # A type the client is not granted is answered with hive.policy.denied.
    assert chat["denied_ok"], chat
    assert chat["denied"]["data"]["denied_type"] == "mycroft.volume.set"
    assert chat["denied"]["data"]["code"] == "acl_disallowed_type"
    # A wrong password is closed with 1008 and never gets a session.
    wrong = await run_satellite(
        py, env, {**base, "mode": "refused", "key": ACCESS_KEY, "password": "wrong-password"}
    )
    assert wrong["close_codes"][:1] == [1008]
    assert not wrong["handshake"]
    # A deleted client cannot come back.
    store.delete(one.client_id)
    gone = await run_satellite(py, env, {**base, "mode": "refused", "key": ACCESS_KEY})
    assert gone["close_codes"][:1] == [1008]
    assert not gone["handshake"]


async def test_link_to_the_released_hub_uses_the_legacy_profile(tmp_path, interop_python) -> None:
    """Our hub as a satellite of hivemind-core 4.0.0 (profile L, since it has no Noise)."""
    from hivemind_proto import Profile

    from .hubkit import hub_config

    py = interop_python
    bin_dir = Path(py).parent
    root = tmp_path / "home"
    bus_port, core_port = free_port(), free_port()
    write_bus_config(root, bus_port)
    reference_peers.write_hub_config(
        root,
        {
            "agent_protocol": {
                "module": "hivemind-ovos-agent-plugin",
                "hivemind-ovos-agent-plugin": {"host": "127.0.0.1", "port": bus_port},
            },
            "binary_protocol": {"module": None},
            "network_protocol": {
                "hivemind-websocket-plugin": {"host": "127.0.0.1", "port": core_port}
            },
            "database": {
                "module": "hivemind-json-db-plugin",
                "hivemind-json-db-plugin": {"name": "clients", "subfolder": "hivemind-core"},
            },
        },
    )
    env = xdg_env(root)
    procs: list[trio.Process] = []
    try:
        with trio.fail_after(120):
            await trio.run_process(
                [
                    str(bin_dir / "hivemind-core"),
                    "add-client",
                    "--name",
                    "child",
                    "--access-key",
                    ACCESS_KEY,
                    "--password",
                    PASSWORD,
                ],
                env=env,
                capture_stdout=True,
                capture_stderr=True,
            )
            for argv in (
                [str(bin_dir / "ovos-messagebus")],
                [str(bin_dir / "hivemind-core"), "listen"],
            ):
                proc = await trio.lowlevel.open_process(
                    argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
                procs.append(proc)
            await wait_port(bus_port)
            await wait_port(core_port)
            config = hub_config(
                tmp_path,
                upstream={
                    "enabled": True,
                    "host": "127.0.0.1",
                    "port": core_port,
                    "key": ACCESS_KEY,
                    "password": PASSWORD,
                },
            )
            async with running_hub(tmp_path, config=config) as child:
                await wait_for(lambda: child.hub.upstream_handshake is not None, 60)
                assert child.hub.upstream_handshake.profile is Profile.LEGACY_PASSWORD
                assert child.hub.router.upstream_peer == "upstream::master:0.0.0.0"
    finally:
        for proc in procs:
            await stop(proc)
