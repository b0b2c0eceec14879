"""Shared pieces of the room-command tests (loaded by path; holds no tests itself).

``RoomServer`` runs the real room service (``serve_rooms`` under hypercorn)
on 127.0.0.1 port 0 in a thread running trio. ``World`` drives ``hmctl``
through click's CliRunner against it, with an isolated ``XDG_CONFIG_HOME``.
Runs use the real pipeline with the local runner and the repository's
deterministic agents (no LLM).
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
from click.testing import CliRunner, Result
from hivemind_rooms._serve import serve_rooms
from hivemind_rooms.attestation import load_or_create_dev_provider
from hivemind_rooms.settings import Settings
from hivemind_rooms.vault import FAST_KDF

ADMIN = "admin-key-for-hmctl-tests-0123456789"
REPO = Path(__file__).resolve().parents[3]
AGENTS = REPO / "agents"
_START_TIMEOUT = 30


class RoomServer:
    """The real room service on loopback, in a background trio thread."""

    def __init__(self, data_dir: Path, **overrides: Any) -> None:
        values: dict[str, Any] = {
            "data_dir": data_dir,
            "admin_key": ADMIN,
            "self_serve_signup": True,
            "host": "127.0.0.1",
            "port": 0,
        }
        values.update(overrides)
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.settings = Settings(**values)
        self.url = ""
        self._ready: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=trio.run, args=(self._main,), daemon=True)
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        try:
            async with trio.open_nursery() as nursery:
                serve = partial(
                    serve_rooms, self.settings, kdf=FAST_KDF, shutdown_trigger=self._stop.wait
                )
                urls = await nursery.start(serve)
                self._ready.put(urls[0])
        except Exception as exc:  # reported to the starting thread
            self._ready.put(exc)

    def __enter__(self) -> RoomServer:
        self._thread.start()
        item = self._ready.get(timeout=_START_TIMEOUT)
        if isinstance(item, BaseException):
            raise item
        self.url = item
        return self

    def __exit__(self, *exc: object) -> None:
        if self._token is not None and self._stop is not None:
            trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(timeout=_START_TIMEOUT)
        assert not self._thread.is_alive(), "room service did not stop"

    def dev_root(self) -> str:
        """The dev attestation root the service persisted."""
        return load_or_create_dev_provider(self.settings.data_dir, "{}").root_public_key_b64()


class World:
    """hmctl invocations against one running room service."""

    def __init__(self, server: RoomServer, runner: CliRunner) -> None:
        self.server = server
        self.runner = runner
        self.url = server.url
        self.trusted = False

    def run(self, *args: str, input: str | None = None) -> Result:
        from hmctl import cli

        return self.runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    def ok(self, *args: str, input: str | None = None) -> Result:
        result = self.run(*args, input=input)
        assert result.exit_code == 0, (args, result.stdout, result.stderr)
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.ok("--json", *args).stdout)

    def trust_service(self) -> None:
        """Trust the service's dev root and approve its compose hash (a fresh quote)."""
        self.trust_dev_root()
        self.ok("-y", "trust", "attest", "--service", self.url)
        self.trusted = True

    def tenant(self, name: str) -> str:
        """Create a tenant, save it as profile ``name``; return its key.

        The service is trusted first (:meth:`trust_service`, once): the admin
        key and the tenant key go only to a verified service.
        """
        if not self.trusted:
            self.trust_service()
        key = self.ok(
            "admin",
            "tenants",
            "create",
            name,
            "--allow-duplicate-name",
            "--service",
            self.url,
            "--admin-key",
            ADMIN,
            "-q",
        ).stdout.strip()
        self.ok("--profile", name, "init", "--service", self.url, "--api-key", key)
        return key

    def trust_dev_root(self) -> None:
        self.ok("trust", "dev-root", "add", self.server.dev_root())

    def create_room(self, owner: str = "alice", *extra: str) -> dict[str, Any]:
        """A fixed-query room with the default agents (no LLM); returns the create JSON."""
        args = [
            "--profile",
            owner,
            "-y",
            "--json",
            "room",
            "create",
            str(AGENTS / "default-scope"),
            "--query-agent",
            str(AGENTS / "default-query"),
            "--mediator-agent",
            str(AGENTS / "default-mediator"),
            "--name",
            "Salary bands",
            "--rules",
            "hide: email",
            "--no-llm",
            *extra,
        ]
        return json.loads(self.ok(*args).stdout)


@pytest.fixture
def room_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("HIVEMIND_RUNNER", "local")
    monkeypatch.setenv("HIVEMIND_ALLOW_LOCAL_RUNNER", "1")
    for name in (
        "HMCTL_DEBUG",
        "HIVEMIND_PROFILE",
        "HIVEMIND_TRUST_ALL",
        "HIVEMIND_TRUST_HASH",
        "HIVEMIND_NO_TRUST_CHECK",
        "HIVEMIND_ALLOW_DEV_ATTESTATION",
        "HIVEMIND_ADMIN_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def world(room_env: Path) -> Iterator[World]:
    with RoomServer(room_env / "rooms-data") as server:
        yield World(server, CliRunner())


@pytest.fixture
def ready(world: World) -> World:
    """Alice (owner) and Bob (participant) set up; the dev root trusted."""
    world.trust_service()
    world.tenant("alice")
    world.tenant("bob")
    return world
