"""A room share link used through a hub: ``room ask SHARE_LINK --via-hub``.

The real room service (hmctl's test server on 127.0.0.1, local runner) and a
real hub linked to it as a peer. The share token travels sealed to the
attested service inside the bridge request, exactly as an invite token does;
the answer is verified end to end, and once the owner disables the link the
same command is refused.
"""

from __future__ import annotations

import importlib.util
import json
import secrets
from pathlib import Path

import pytest
import trio
from hivemind_rooms.hive import ROOM_TYPES
from hivemind_rooms.links import LinkKind, RoomLink

_here = Path(__file__).resolve()
_spec = importlib.util.spec_from_file_location("room_support", _here.with_name("room_support.py"))
sup = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sup)
_demo_spec = importlib.util.spec_from_file_location("hivemind_demo", sup.REPO / "tools" / "demo.py")
demo = importlib.util.module_from_spec(_demo_spec)
_demo_spec.loader.exec_module(demo)
room_env, world, ready = sup.room_env, sup.world, sup.ready

pytestmark = pytest.mark.slow


async def test_share_link_asks_through_a_hub(ready, room_env: Path) -> None:
    w = ready
    created = await trio.to_thread.run_sync(w.create_room)
    room_id = created["room_id"]
    await trio.to_thread.run_sync(
        w.ok, "--profile", "alice", "room", "add-data", room_id, "Ann is in band B"
    )
    minted = await trio.to_thread.run_sync(
        w.ok, "--profile", "alice", "room", "share-link", "create", room_id, "-q"
    )
    link = minted.stdout.strip()
    assert RoomLink.parse(link).kind is LinkKind.SHARE
    hub_dir = room_env / "hub"
    hub_dir.mkdir()
    config = demo.linked_hub_config(w.server.settings.data_dir, hub_dir, w.url, "hub")
    with trio.fail_after(240):
        async with demo.running_hub(hub_dir, config) as hub:
            await demo.wait_for(lambda: hub.hub.router.upstream_peer, 60)
            key, password = secrets.token_hex(16), secrets.token_urlsafe(18)
            hub.hub.store.create(api_key=key, name="cli", password=password,
                                 allowed_types=list(ROOM_TYPES), can_escalate=True)  # fmt: skip
            via = ["--via-hub", f"ws://127.0.0.1:{hub.port}", "--access-key", key,
                   "--password", password]  # fmt: skip
            answered = await trio.to_thread.run_sync(
                w.run, "--json", "--profile", "bob", "room", "ask", link, "What do the notes say?",
                *via,
            )  # fmt: skip
            await trio.to_thread.run_sync(
                w.ok, "--profile", "alice", "-y", "room", "share-link", "disable", room_id
            )
            refused = await trio.to_thread.run_sync(
                w.run, "--json", "--profile", "bob", "room", "ask", link, "again", *via
            )
    assert answered.exit_code == 0, answered.stderr
    answer = json.loads(answered.stdout)
    assert answer["status"] == "completed"
    assert answer["room_id"] == room_id
    assert "Ann is in band B" in answer["output"]
    assert any("run attestation" in line for line in answer["verified"])
    assert refused.exit_code == 13, refused.stdout  # access refused, as over HTTP
    assert "refused (401)" in json.loads(refused.stdout)["error"]  # the disabled link, upstream
    assert "Ann is in band B" not in refused.stdout
    assert RoomLink.parse(link).token not in refused.stdout + refused.stderr
