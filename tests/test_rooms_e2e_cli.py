"""Room runs driven by the installed ``hmctl`` against the real server and the docker runner.

The CLI verifies the service attestation (a trusted dev root), signs and
creates rooms from the agent directories in ``agents/``, asks, and verifies
the signed run attestation before printing; a participant's sealed agent is
uploaded with ``room ask --agent``.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from hivemind_rooms._serve import serve_rooms
from hivemind_rooms.attestation.service import load_or_create_dev_provider
from hivemind_rooms.settings import Settings
from hivemind_rooms.vault import FAST_KDF

ROOT = Path(__file__).resolve().parents[1]
HMCTL = str(Path(sys.executable).with_name("hmctl"))
ADMIN = "admin-key-for-cli-e2e-0123456789"


async def _hmctl(home: Path, *args: str) -> str:
    env = {**os.environ, "HOME": str(home), "NO_COLOR": "1", "COLUMNS": "200"}
    for name in ("HIVEMIND_PROFILE", "HIVEMIND_NO_TRUST_CHECK", "HIVEMIND_ALLOW_DEV_ATTESTATION"):
        env.pop(name, None)
    result = await trio.run_process(
        [HMCTL, *args], env=env, cwd=ROOT, capture_stdout=True, capture_stderr=True, check=False
    )
    out = result.stdout.decode() + result.stderr.decode()
    assert result.returncode == 0, out
    return out


async def _sql(client: httpx.AsyncClient, key: str, sql: str, params: list[Any]) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    r = await client.post("/v1/tenant/sql", json={"sql": sql, "params": params}, headers=headers)
    assert r.status_code == 200, r.text


@pytest.mark.slow
async def test_hmctl_asks_rooms_on_the_real_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HIVEMIND_RUNNER", "docker")
    monkeypatch.delenv("HIVEMIND_ALLOW_LOCAL_RUNNER", raising=False)
    data, home = tmp_path / "data", tmp_path / "home"
    data.mkdir()
    home.mkdir()
    settings = Settings(data_dir=data, admin_key=ADMIN, host="127.0.0.1", port=0)
    with trio.fail_after(280):
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(functools.partial(serve_rooms, settings, kdf=FAST_KDF))
            async with httpx.AsyncClient(base_url=urls[0], timeout=30) as client:
                await _scenario(client, urls[0], data, home)
            nursery.cancel_scope.cancel()


async def _scenario(client: httpx.AsyncClient, base: str, data: Path, home: Path) -> None:
    root = await trio.to_thread.run_sync(
        lambda: load_or_create_dev_provider(data, "{}").root_public_key_b64()
    )
    await _hmctl(home, "trust", "dev-root", "add", root)
    r = await client.post(
        "/v1/admin/tenants", json={"name": "owner"}, headers={"Authorization": f"Bearer {ADMIN}"}
    )
    key = r.json()["api_key"]
    await _hmctl(home, "-y", "init", "--service", base, "--api-key", key)
    await _sql(client, key, "CREATE TABLE people (name TEXT, email TEXT, city TEXT)", [])
    rows = ["Ann", "ann@example.org", "Lisbon", "Bob", "bob@example.org", "Porto"]
    await _sql(client, key, "INSERT INTO people VALUES (?, ?, ?), (?, ?, ?)", rows)
    await _sql(client, key, "CREATE TABLE evenings (day TEXT, free INTEGER)", [])
    days = ["2026-12-02", 0, "2026-12-04", 1, "2026-12-05", 1]
    await _sql(client, key, "INSERT INTO evenings VALUES (?, ?), (?, ?), (?, ?)", days)
    fixed = json.loads(
        await _hmctl(
            home,
            "--json",
            "-y",
            "room",
            "create",
            "agents/default-scope",
            "--query-agent",
            "agents/default-query",
            "--mediator-agent",
            "agents/default-mediator",
            "--no-llm",
            "--allowed-table",
            "people",
            "--name",
            "people",
            "--rules",
            "hide: email\nredact: Porto",
        )
    )
    answer = await _hmctl(home, "-y", "room", "ask", fixed["link"], "SQL: SELECT * FROM people")
    assert "Lisbon" in answer
    assert "example.org" not in answer
    assert "Porto" not in answer
    assert "attestation verified" in answer
    dinner = json.loads(
        await _hmctl(
            home,
            "--json",
            "-y",
            "room",
            "create",
            "agents/default-scope",
            "--uploadable-query",
            "--mediator-agent",
            "agents/redact-mediator",
            "--no-llm",
            "--allowed-table",
            "evenings",
            "--name",
            "dinner",
            "--rules",
            "dinner",
        )
    )
    answer = await _hmctl(
        home, "-y", "room", "ask", dinner["link"], "when?", "--agent", "agents/dinner-negotiation"
    )
    assert "Dinner on 2026-12-04." in answer
    assert "attestation verified" in answer
