"""``hmctl hub listen`` runs the real hub: started as a subprocess on port 0, then joined once."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import trio
from hivemind_proto import HiveMessage, MessageType, Profile, bus_message
from hivemind_proto.trio import SatelliteIdentity, open_hive

KEY = "listen0123456789abcdef0123456789"
PASSWORD = "listen-test-password-1234567"


async def read_port(proc: trio.Process) -> int:
    buf = b""
    with trio.fail_after(30):
        while True:
            chunk = await proc.stdout.receive_some(4096)
            assert chunk, "hmctl hub listen exited early"
            buf += chunk
            found = re.search(rb"listening on 127\.0\.0\.1:(\d+)", buf)
            if found:
                return int(found.group(1))


async def test_listen_serves_a_satellite(run, xdg) -> None:
    added = run("hub", "add-client", "--name", "sat", "--access-key", KEY, "--password", PASSWORD)
    assert added.exit_code == 0, added.output
    assert run("hub", "allow-msg", "recognizer_loop:utterance", "1").exit_code == 0
    env = {**os.environ, "XDG_CONFIG_HOME": str(xdg / "config"), "XDG_DATA_HOME": str(xdg / "data")}
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "hmctl", "hub", "listen", "--host", "127.0.0.1", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        port = await read_port(proc)
        assert port > 0
        identity = SatelliteIdentity(access_key=KEY, password=PASSWORD, session_id="listen-s1")
        with trio.fail_after(30):
            async with open_hive(f"ws://127.0.0.1:{port}", identity) as client:
                assert client.handshake.profile is Profile.LEGACY_PASSWORD
                assert client.hub_hello["node_id"].startswith("hub-")
                msg = HiveMessage(MessageType.BUS, bus_message("not.granted", {}, {}))
                await client.send(msg)
                denied = await client.receive(timeout=10)
                assert denied.payload["type"] == "hive.policy.denied"
    finally:
        with trio.CancelScope(shield=True):
            proc.terminate()
            with trio.move_on_after(10):
                await proc.wait()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            await proc.stdout.aclose()
