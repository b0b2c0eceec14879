"""``hmctl rooms serve`` and ``hmctl up`` as real processes; local state edge cases."""

from __future__ import annotations

import importlib.util
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import trio

_spec = importlib.util.spec_from_file_location(
    "room_support", Path(__file__).with_name("room_support.py")
)
sup = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sup)
room_env, world = sup.room_env, sup.world

HMCTL = str(Path(sys.executable).with_name("hmctl"))


class Process:
    """A console-script process whose output lines are read in a thread (bounded waits)."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [HMCTL, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                break
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"{text!r} not printed; got {self.seen}")

    def interrupt(self, timeout: float = 30) -> int:
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=10)
            if self.proc.stdout is not None:
                self.proc.stdout.close()


class Cli(sup.World):
    """CliRunner invocations without a server started by the test."""

    def __init__(self) -> None:
        self.runner = sup.CliRunner()


def test_rooms_serve_runs_and_prints_its_dev_root(room_env):
    data = room_env / "served"
    proc = Process("rooms", "serve", "--port", "0", "--data-dir", str(data))
    try:
        url = proc.wait_for("Room service listening on").rsplit(" ", 1)[1]
        root = proc.wait_for("Dev attestation root:").rsplit(" ", 1)[1]
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{url}/v1/healthz", timeout=10).json()["status"] == "ok"
        assert root == sup.load_or_create_dev_provider(data, "{}").root_public_key_b64()
    finally:
        assert proc.interrupt() == 0
    assert "stopped" in proc.wait_for("stopped", timeout=5)
    assert oct(data.stat().st_mode & 0o777) == oct(0o700)


def test_rooms_serve_refuses_a_public_bind_without_admin_key(world):
    result = world.run("rooms", "serve", "--host", "0.0.0.0", "--port", "0")
    assert result.exit_code == 2
    assert "non-loopback bind requires an admin key" in result.stderr
    assert "HIVEMIND_ADMIN_KEY" in result.stderr


def test_rooms_serve_takes_host_and_port_from_the_environment(room_env, monkeypatch):
    from hmctl._cmd_serve import _settings

    monkeypatch.setenv("HIVEMIND_HOST", "::1")
    monkeypatch.setenv("HIVEMIND_PORT", "8123")
    from_env = _settings(None, None, room_env / "d", None)
    assert (from_env.host, from_env.port) == ("::1", 8123)
    given = _settings("127.0.0.1", 0, room_env / "d", None)
    assert (given.host, given.port) == ("127.0.0.1", 0)  # options win


def test_a_public_host_from_the_environment_needs_an_admin_key(world, monkeypatch):
    monkeypatch.setenv("HIVEMIND_HOST", "0.0.0.0")
    monkeypatch.delenv("HIVEMIND_ADMIN_KEY", raising=False)
    refused = world.run("rooms", "serve", "--port", "0")
    assert refused.exit_code == 2
    assert "refusing to listen on 0.0.0.0" in refused.stderr


def test_up_starts_hub_and_rooms_and_saves_an_admin_profile(room_env):
    proc = Process("up", "--rooms-port", "0", "--hub-port", "0", "--data-dir", str(room_env / "d"))
    try:
        rooms_line = proc.wait_for("Room service:")
        hub_line = proc.wait_for("Hub")
        attest_hint = proc.wait_for("trust attest")
        proc.wait_for("Ready.")
        rooms_url = rooms_line.split()[2]
        assert rooms_url.startswith("http://127.0.0.1:")
        assert hub_line.startswith(("Hub:          ws://127.0.0.1:", "Hub: not available"))
        w = Cli()
        # the admin key goes to the service only once its compose hash is approved
        early = w.run("--profile", "local-admin", "admin", "tenants", "create", "alice")
        assert early.exit_code == 9
        assert "hmctl -y trust attest --service" in early.stderr
        # up trusted its own dev root, so the attestation verifies (hash approved with -y)
        argv = attest_hint.split()
        assert argv[:4] == ["hmctl", "-y", "trust", "attest"]
        assert w.json(*argv[1:])["platform"] == "dev"
        created = w.json("--profile", "local-admin", "admin", "tenants", "create", "alice")
        assert created["api_key"].startswith("hmk_")
        w.ok("--profile", "alice", "init", "--service", rooms_url, "--api-key", created["api_key"])
        assert w.json("--profile", "alice", "whoami")["name"] == "alice"
    finally:
        assert proc.interrupt() == 0


def test_corrupt_local_state_is_reported_not_crashed(world, room_env):
    world.tenant("alice")
    profile = room_env / "config" / "hivemind" / "profiles" / "alice.json"
    profile.write_text("{not json")
    result = world.run("--profile", "alice", "whoami")
    assert result.exit_code == 5
    assert "not valid JSON" in result.stderr
    assert "Traceback" not in result.stderr
    left = [p.name for p in profile.parent.iterdir() if p.name.startswith(".")]
    assert left == []  # atomic writes leave no temporary files behind


def test_no_color_output_has_no_escape_codes(world, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    world.tenant("alice")
    out = world.ok("--profile", "alice", "doctor").stdout
    assert "\x1b[" not in out
    assert "OK" in out


def test_a_setting_refused_while_the_service_starts_is_a_usage_error():
    from hivemind_rooms.settings import SettingsError
    from hmctl._cmd_serve import _run_service
    from hmctl._runtime import InvalidValueError

    async def refuses() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.sleep_forever)
            raise SettingsError("HIVEMIND_RUN_WORKERS must be an integer, got 'abc'")

    with pytest.raises(InvalidValueError, match="HIVEMIND_RUN_WORKERS"):
        _run_service(refuses)
