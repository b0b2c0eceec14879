"""Hostile query agents on the real sandbox runners (docker against the real dockerd, bwrap).

A query agent that tries the network, the host filesystem, another table of
the tenant or more memory than allowed must fail safely: the attempts are
refused inside the sandbox and nothing outside the scope reaches the answer.
"""

from __future__ import annotations

import importlib.util
import json
import socket
import threading
from pathlib import Path

import pytest
from hivemind_rooms.runners import RunnerKind, available_runners, select_runner

_spec = importlib.util.spec_from_file_location(
    "test_pipeline_support", Path(__file__).with_name("test_pipeline_support.py")
)
rs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rs)
sup = rs.sup

HOSTILE = r"""
import json, os, socket
from hivemind_agent import Bridge, BridgeError

b = Bridge()
spec = json.loads(b.inputs()["prompt"])
report = {}
for name, address in (("net_local", ("127.0.0.1", spec["port"])), ("net_out", ("1.1.1.1", 53))):
    try:
        with socket.create_connection(address, timeout=3) as s:
            s.sendall(b"LEAK")
        report[name] = "open"
    except OSError:
        report[name] = "blocked"
try:
    with open(spec["canary_path"]) as f:
        report["fs"] = f.read()
except OSError:
    report["fs"] = "blocked"
try:
    b.tool("execute_sql", sql="SELECT * FROM secrets")
    report["sql"] = "open"
except BridgeError as exc:
    report["sql"] = exc.message
try:
    with open("/agent/planted", "w") as f:
        f.write("x")
    report["write_agent"] = "open"
except OSError:
    report["write_agent"] = "blocked"
report["env"] = sorted(k for k in os.environ if k.startswith("HIVEMIND"))
b.finish(json.dumps(report))
"""

MEMORY_HOG = r"""
chunks = []
for _ in range(64):
    chunk = bytearray(16 * 1024 * 1024)
    chunk[::4096] = b"x" * len(chunk[::4096])
    chunks.append(chunk)
print("survived", len(chunks))
"""


def _sandboxes() -> list:
    kinds = {s.kind: s.available for s in available_runners()}
    params = [pytest.param(RunnerKind.DOCKER, id="docker")]  # required: dockerd is present
    params.append(
        pytest.param(
            RunnerKind.BWRAP,
            id="bwrap",
            marks=pytest.mark.skipif(not kinds.get(RunnerKind.BWRAP), reason="no bwrap"),
        )
    )
    return params


def _every_runner() -> list:
    return [*_sandboxes(), pytest.param(RunnerKind.LOCAL, id="local")]


@pytest.mark.parametrize("kind", _every_runner())
def test_mediated_run_on_every_runner(tmp_path: Path, kind: RunnerKind) -> None:
    runner = select_runner(kind.value, allow_local=kind is RunnerKind.LOCAL)
    with rs.client(tmp_path, runner=runner) as c:
        t = sup.new_tenant(c)
        rs.seed(c, t["api_key"])
        room = rs.make_room(c, t, policy="hide: email\nredact: Porto")
        run = rs.ask(c, room, t["api_key"], "who lives where?")
    assert run["status"] == "completed", run["error"]
    assert "Lisbon" in run["output"]
    assert "example.org" not in run["output"]
    assert "Porto" not in run["output"]
    assert {s["runner"] for s in run["usage"]["stages"].values()} == {kind.value}


class Listener:
    """A loopback TCP listener that records whether anyone connected."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for _ in range(3000):  # bounded: at most about ten minutes
            if self._stop.is_set():
                return
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    self.received.append(conn.recv(100))
                except OSError:
                    self.received.append(b"")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.mark.parametrize("kind", _sandboxes())
def test_hostile_query_agent_fails_safely(tmp_path: Path, kind: RunnerKind) -> None:
    runner = select_runner(kind.value, allow_local=False)
    canary = tmp_path / "host-canary.txt"
    canary.write_text("CANARY-HOST-FILE-3b9d")
    listener = Listener()
    try:
        with rs.client(tmp_path, runner=runner) as c:
            t = sup.new_tenant(c)
            key = t["api_key"]
            rs.seed(c, key)
            scope = rs.upload(c, key, "default-scope", "scope")
            query = rs.custom_agent(c, key, tmp_path, "hostile", "query", HOSTILE)
            room = rs.room_with(c, t, scope_id=scope, query_id=query)
            prompt = json.dumps({"port": listener.port, "canary_path": str(canary)})
            run = rs.wait_run(c, sup.auth(key), rs.submit(c, room, sup.auth(key), prompt), 240)
    finally:
        listener.close()
    assert run["status"] == "completed", run["error"]
    report = json.loads(run["output"])
    assert report["net_local"] == "blocked"
    assert report["net_out"] == "blocked"
    assert report["fs"] == "blocked"
    assert report["sql"] == "query rejected"
    assert report["write_agent"] == "blocked"
    assert report["env"] == ["HIVEMIND_BRIDGE_SOCKET"]  # inputs never travel in the environment
    assert listener.received == []
    assert "CANARY" not in run["output"]
    assert run["usage"]["stages"]["query"]["runner"] == kind.value


@pytest.mark.parametrize("kind", _sandboxes())
def test_memory_hog_fails_the_run(tmp_path: Path, kind: RunnerKind) -> None:
    runner = select_runner(kind.value, allow_local=False)
    with rs.client(tmp_path, runner=runner) as c:
        t = sup.new_tenant(c)
        key = t["api_key"]
        rs.seed(c, key)
        scope = rs.upload(c, key, "default-scope", "scope")
        hog = rs.custom_agent(c, key, tmp_path, "hog", "query", MEMORY_HOG, memory_mb="64")
        room = rs.room_with(c, t, scope_id=scope, query_id=hog)
        run = rs.wait_run(c, sup.auth(key), rs.submit(c, room, sup.auth(key), "q"), 240)
    assert run["status"] == "failed"
    assert run["output"] is None
    assert "exceeding its memory limit" in run["error"]
    assert "survived" not in (run["error"] or "")
