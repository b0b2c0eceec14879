"""`hmctl room ask LINK QUESTION --via-hub URL --access-key K --password P`, end to end.

The real room service and a hub linked to it on loopback; hmctl runs through
click's CliRunner (in a worker thread, as it starts its own trio loop) with
an isolated configuration directory, and prints the answer it verified.
"""

from __future__ import annotations

import importlib.util
import json
import secrets
from pathlib import Path

import httpx
import pytest
import trio
from click.testing import CliRunner
from hivemind_rooms.hive import ROOM_TYPES
from hivemind_rooms.vault import FAST_KDF

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("hivemind_demo", ROOT / "tools" / "demo.py")
demo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(demo)

pytestmark = pytest.mark.slow


def _hmctl(*args: str) -> tuple[int, str, str]:
    from hmctl import cli

    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


async def test_room_ask_via_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HIVEMIND_RUNNER", await trio.to_thread.run_sync(demo.pick_runner))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for name in ("rooms", "hub"):
        (tmp_path / name).mkdir()
    admin = secrets.token_urlsafe(24)
    with trio.fail_after(280):
        async with demo.running_room_service(tmp_path / "rooms", admin, kdf=FAST_KDF) as base:
            async with httpx.AsyncClient(base_url=base, timeout=120) as http:
                sample = await demo.create_sample_room(http, admin)
            config = demo.linked_hub_config(tmp_path / "rooms", tmp_path / "hub", base, "hub")
            async with demo.running_hub(tmp_path / "hub", config) as hub:
                await demo.wait_for(lambda: hub.hub.router.upstream_peer, 60)
                key, password = secrets.token_hex(16), secrets.token_urlsafe(18)
                hub.hub.store.create(api_key=key, name="cli", password=password,
                                     allowed_types=list(ROOM_TYPES), can_escalate=True)  # fmt: skip
                root = demo.dev_policy(tmp_path / "rooms").dev_roots
                steps = [
                    ("trust", "dev-root", "add", next(iter(root))),
                    ("-y", "--profile", "p", "init", "--service", base, "--api-key",
                     sample["payer_key"]),
                    ("--profile", "p", "--json", "room", "ask", sample["link"],
                     demo.SAMPLE_QUESTION, "--via-hub", f"ws://127.0.0.1:{hub.port}",
                     "--access-key", key, "--password", password),
                ]  # fmt: skip
                results = [await trio.to_thread.run_sync(_hmctl, *step) for step in steps]
                wrong = await trio.to_thread.run_sync(
                    _hmctl, "--profile", "p", "room", "ask", sample["link"], "x",
                    "--via-hub", f"ws://127.0.0.1:{hub.port}", "--access-key", key,
                    "--password", "wrong-password-000",
                )  # fmt: skip
    for code, out, err in results:
        assert code == 0, (out, err)
    answer = json.loads(results[-1][1])
    assert answer["status"] == "completed"
    assert answer["room_id"] == sample["room_id"]
    assert "| Ann | Lisbon |" in answer["output"]
    assert "Porto" not in answer["output"]
    assert any("run attestation" in line for line in answer["verified"])
    assert answer["label"] == "unattested"
    assert wrong[0] != 0
