"""``hmctl rooms peers add/list/remove``: peer hub credentials of a room service."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from hivemind_rooms.hive import ROOM_TYPES, PeerStore


def _run(*args: str) -> tuple[int, str]:
    from hmctl import cli

    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout


def test_add_list_remove(tmp_path: Path) -> None:
    data = str(tmp_path)
    code, out = _run("--json", "rooms", "peers", "add", "edge", "--data-dir", data)
    assert code == 0, out
    added = json.loads(out)
    assert added["allowed_types"] == list(ROOM_TYPES)
    store = PeerStore(tmp_path)
    found = store.by_access_key(added["access_key"])
    store.close()
    assert found is not None
    assert found.password == added["password"]
    code, out = _run(
        "--json", "rooms", "peers", "add", "asker", "--type", "hivemind.room.attestation",
        "--data-dir", data,
    )  # fmt: skip
    assert json.loads(out)["allowed_types"] == ["hivemind.room.attestation"]
    code, out = _run("--json", "rooms", "peers", "list", "--data-dir", data)
    listed = json.loads(out)
    assert [p["name"] for p in listed] == ["asker", "edge"]
    assert added["password"] not in out
    assert added["access_key"] not in out
    assert _run("rooms", "peers", "add", "edge", "--data-dir", data)[0] != 0
    assert _run("rooms", "peers", "remove", "edge", "--data-dir", data)[0] == 0
    assert _run("rooms", "peers", "remove", "edge", "--data-dir", data)[0] != 0
    code, out = _run("--json", "rooms", "peers", "list", "--data-dir", data)
    assert [p["name"] for p in json.loads(out)] == ["asker"]
