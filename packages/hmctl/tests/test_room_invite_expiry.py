"""``hmctl room invite --expires-in``: parsing and the expiry the real service stores."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import httpx
import pytest
from hmctl._room_base import parse_duration
from hmctl.client import UsageProblem

_spec = importlib.util.spec_from_file_location(
    "room_support", Path(__file__).with_name("room_support.py")
)
sup = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sup)
room_env, world = sup.room_env, sup.world


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("3600", 3600), ("90s", 90), ("90m", 5400), ("12h", 43200), ("7d", 604800), (" 2h ", 7200)],
)
def test_durations_parse(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "0h", "-5m", "1.5h", "90x", "h", "7 d", "1w"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(UsageProblem, match="invalid duration"):
        parse_duration(text)


def _tokens(url: str, key: str) -> list[dict]:
    r = httpx.get(f"{url}/v1/tenant/tokens", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["tokens"]


def test_expires_in_reaches_the_service(world) -> None:
    w = world
    key = w.tenant("alice")
    w.tenant("bob")
    room_id = w.create_room()["room_id"]
    before = time.time()
    minted = w.json("--profile", "alice", "room", "invite", room_id, "--expires-in", "2h")
    after = time.time()
    assert before + 7200 - 1 <= minted["expires_at"] <= after + 7200 + 1
    stored = {t["token_id"]: t for t in _tokens(w.url, key)}
    assert stored[minted["token_id"]]["expires_at"] == minted["expires_at"]
    # the invite works while it lasts
    assert w.json("--profile", "bob", "room", "inspect", minted["link"])["room_id"] == room_id
    human = w.ok("--profile", "alice", "room", "invite", room_id, "--expires-in", "7d").stdout
    assert "Expires" in human
    assert "UTC" in human
    plain = w.json("--profile", "alice", "room", "invite", room_id)
    assert plain["expires_at"] is None
    count = len(_tokens(w.url, key))
    bad = w.run("--profile", "alice", "room", "invite", room_id, "--expires-in", "soon")
    assert bad.exit_code == 2
    assert "invalid duration" in bad.stderr
    too_short = w.run("--profile", "alice", "room", "invite", room_id, "--expires-in", "30s")
    assert too_short.exit_code != 0  # parsed, then refused by the service (60 s minimum)
    assert "expires_in_seconds" in too_short.stderr
    assert len(_tokens(w.url, key)) == count  # neither refused invite was minted
