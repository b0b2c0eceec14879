"""Room share links through hmctl, against a real room service on 127.0.0.1.

The owner mints the link with ``room share-link``; participants use it
wherever a room link is taken. What a share-link holder may do is checked
end to end (verify, ask, read the runs they paid for) and so is what it may
not (owner routes, query-agent uploads, other rooms, runs paid by others,
and anything at all once the link is rotated, disabled or the room deleted).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from hivemind_rooms.links import LinkKind, RoomLink

_spec = importlib.util.spec_from_file_location(
    "room_support", Path(__file__).with_name("room_support.py")
)
sup = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sup)
room_env, world, ready = sup.room_env, sup.world, sup.ready

QUESTION = "What do the notes say?"


def _share(w, room_id: str) -> str:
    """Alice mints the room's share link; return its text."""
    text = w.ok("--profile", "alice", "room", "share-link", "create", room_id, "-q").stdout.strip()
    assert RoomLink.parse(text).kind is LinkKind.SHARE
    return text


def _share_api(w, link: str, profile: str = "bob"):
    """The client library's view of the share link (share token as bearer, profile as payer)."""
    from hmctl.client import LocalState, resolve_target

    state = LocalState()
    target = resolve_target(state, state.load_profile(profile), link)
    assert target.is_share
    assert target.access == "share"
    assert target.bearer == RoomLink.parse(link).token
    return target.api()


def test_owner_creates_shows_and_the_holder_asks_with_a_verified_answer(ready):
    w = ready
    created = w.create_room()
    room_id = created["room_id"]
    w.ok("--profile", "alice", "room", "add-data", room_id, "Ann is in band B")
    assert w.json("--profile", "alice", "room", "share-link", "show", room_id) == {
        "room_id": room_id,
        "enabled": False,
        "prefix": None,
        "created_at": None,
        "rotated_at": None,
        "link": None,
    }
    minted = w.json("--profile", "alice", "room", "share-link", "create", room_id)
    assert minted["created"] is True
    assert minted["enabled"] is True
    link = minted["link"]
    parsed = RoomLink.parse(link)
    assert (parsed.kind, parsed.room_id, parsed.service_url) == (LinkKind.SHARE, room_id, w.url)
    assert "share_token" not in minted  # the link carries it; no second copy in the output
    # creating again changes nothing and never shows the text twice
    again = w.json("--profile", "alice", "room", "share-link", "create", room_id)
    assert (again["created"], again["link"], again["prefix"]) == (False, None, minted["prefix"])
    quiet = w.ok("--profile", "alice", "room", "share-link", "create", room_id, "-q")
    assert quiet.stdout == ""
    assert "share-link rotate" in quiet.stderr
    shown = w.json("--profile", "alice", "room", "share-link", "show", created["link"])
    assert (shown["enabled"], shown["prefix"], shown["link"]) == (True, minted["prefix"], None)
    human = w.ok("--profile", "alice", "room", "share-link", "show", room_id).stdout
    assert minted["prefix"] in human
    assert parsed.token not in human

    inspected = w.json("--profile", "bob", "room", "inspect", link)
    assert inspected["access"] == "share"
    assert inspected["manifest_hash"] == created["manifest_hash"]
    assert inspected["accepted"] is False
    assert "Access: share link" in w.ok("--profile", "bob", "room", "inspect", link).stdout
    assert w.json("--profile", "bob", "room", "inspect", created["link"])["access"] == "invite"

    unanswered = w.run("--profile", "bob", "room", "ask", link, QUESTION)
    assert unanswered.exit_code == 9  # first use: the holder must accept the manifest
    answered = w.run("--profile", "bob", "room", "ask", link, QUESTION, input="y\n")
    assert answered.exit_code == 0, answered.stderr
    assert "Ann is in band B" in answered.stdout
    assert "attestation verified" in answered.stdout
    result = w.json("--profile", "bob", "room", "ask", link, QUESTION)
    assert result["status"] == "completed"
    assert result["attestation_ok"] is True
    assert "Ann is in band B" in result["output"]
    doctor = w.json("--profile", "bob", "doctor", link)
    assert {c["name"]: c["status"] for c in doctor["checks"]}["room acceptance"] == "OK"

    # the holder reads the runs it paid for, through the share link
    mine = w.json("--profile", "bob", "runs", "list", "--room", link)["runs"]
    assert result["run_id"] in [r["run_id"] for r in mine]
    shown_run = w.json("--profile", "bob", "runs", "show", result["run_id"], "--room", link)
    assert "Ann is in band B" in shown_run["output"]
    assert shown_run["attestation"] is not None


def test_another_holder_of_the_same_link_sees_only_its_own_runs(ready):
    w = ready
    created = w.create_room()
    link = _share(w, created["room_id"])
    asked = w.json("--profile", "bob", "-y", "room", "ask", link, QUESTION)
    assert asked["attestation_ok"] is True
    w.tenant("carol")
    assert w.json("--profile", "carol", "runs", "list", "--room", link)["runs"] == []
    hidden = w.run("--profile", "carol", "runs", "show", asked["run_id"], "--room", link)
    assert hidden.exit_code == 3  # someone else's run does not exist for this payer
    theirs = w.json("--profile", "carol", "-y", "room", "ask", link, QUESTION)
    assert theirs["attestation_ok"] is True
    carol_runs = [
        r["run_id"] for r in w.json("--profile", "carol", "runs", "list", "--room", link)["runs"]
    ]
    assert carol_runs == [theirs["run_id"]]
    bob_runs = [
        r["run_id"] for r in w.json("--profile", "bob", "runs", "list", "--room", link)["runs"]
    ]
    assert bob_runs == [asked["run_id"]]


def test_share_link_holder_cannot_use_owner_routes_or_upload(ready):
    from hmctl.client import AccessRefused

    w = ready
    created = w.create_room()
    room_id = created["room_id"]
    link = _share(w, room_id)
    agent = str(sup.AGENTS / "simple-query")
    refused = w.run("--profile", "bob", "-y", "room", "ask", link, "hi", "--agent", agent)
    assert refused.exit_code == 2
    assert "share link cannot upload" in refused.stderr
    owner_only = [
        ("POST", f"/v1/rooms/{room_id}/invites"),
        ("GET", f"/v1/rooms/{room_id}/share-link"),
        ("POST", f"/v1/rooms/{room_id}/share-link"),
        ("POST", f"/v1/rooms/{room_id}/share-link/rotate"),
        ("DELETE", f"/v1/rooms/{room_id}/share-link"),
        ("GET", f"/v1/rooms/{room_id}/data"),
        ("DELETE", f"/v1/rooms/{room_id}"),
        ("GET", "/v1/room-agents"),
    ]
    with _share_api(w, link) as api:
        for method, path in owner_only:
            with pytest.raises(AccessRefused) as info:
                api.request(method, path)
            assert info.value.status == 403, (method, path)
            assert "role 'share' not permitted" in info.value.message
        for method, path, kw in [
            ("POST", f"/v1/rooms/{room_id}/data", {"json": {"text": "x", "metadata": {}}}),
            ("POST", f"/v1/rooms/{room_id}/trust", {"json": {"envelope": {}}}),
            ("POST", f"/v1/rooms/{room_id}/query-agents", {"data": {"query": "hi"}}),
        ]:
            with pytest.raises(AccessRefused) as info:
                api.request(method, path, **kw)
            assert info.value.status == 403, (method, path)
        # what the holder may do still works on the same client
        assert api.get(f"/v1/rooms/{room_id}")["room_id"] == room_id
    # the owner's room, its invites and its share link are untouched
    assert w.json("--profile", "alice", "room", "share-link", "show", room_id)["enabled"] is True
    assert w.json("--profile", "bob", "room", "inspect", created["link"])["revoked"] is False


def test_share_link_reaches_only_its_own_room(ready):
    from hmctl.client import AccessRefused

    w = ready
    first = w.create_room()
    second = w.create_room()
    link = _share(w, first["room_id"])
    parsed = RoomLink.parse(link)
    with _share_api(w, link) as api:
        listed = [r["room_id"] for r in api.get("/v1/rooms")["rooms"]]
        assert listed == [first["room_id"]]  # not every room of the owner
        with pytest.raises(AccessRefused) as info:
            api.room_attest(second["room_id"])
        assert info.value.status == 403
    # the same share token pointed at the owner's other room: refused by the service
    moved = RoomLink(
        second["room_id"], parsed.service_url, parsed.token, parsed.owner_pubkey_b64, LinkKind.SHARE
    ).format()
    for command in (["room", "inspect", moved], ["-y", "room", "ask", moved, "hi"]):
        result = w.run("--profile", "bob", *command)
        assert result.exit_code == 13, (command, result.stderr)
        assert "not valid for this room" in result.stderr
        assert parsed.token not in result.stderr
    # and at a room of another tenant
    w.tenant("mallory")
    other = w.create_room("mallory")
    foreign = RoomLink(
        other["room_id"], parsed.service_url, parsed.token, parsed.owner_pubkey_b64, LinkKind.SHARE
    ).format()
    refused = w.run("--profile", "bob", "room", "inspect", foreign)
    assert refused.exit_code == 13  # refused before the room is looked up: nothing leaks
    assert "not valid for this room" in refused.stderr
    runs = w.json("--profile", "alice", "runs", "list")["runs"]
    assert [r for r in runs if r.get("room_id") == second["room_id"]] == []


def test_rotated_disabled_and_deleted_share_links_stop_working(ready):
    w = ready
    created = w.create_room()
    room_id = created["room_id"]
    old = _share(w, room_id)
    w.ok("--profile", "bob", "room", "accept", old)
    rotated = w.json("--profile", "alice", "room", "share-link", "rotate", room_id)
    new = rotated["link"]
    assert RoomLink.parse(new).token != RoomLink.parse(old).token
    assert rotated["rotated_at"] is not None
    stale = w.run("--profile", "bob", "room", "inspect", old)
    assert stale.exit_code == 13
    assert "hint:" in stale.stderr
    assert w.json("--profile", "bob", "-y", "room", "ask", new, QUESTION)["attestation_ok"] is True

    # disabling asks first; without a yes nothing changes
    declined = w.run("--profile", "alice", "room", "share-link", "disable", room_id, input="n\n")
    assert declined.exit_code == 1
    assert w.json("--profile", "bob", "room", "inspect", new)["access"] == "share"
    off = w.json("--profile", "alice", "-y", "room", "share-link", "disable", room_id)
    assert (off["room_id"], off["enabled"], off["link"]) == (room_id, False, None)
    for command in (["room", "inspect", new], ["room", "ask", new, QUESTION]):
        result = w.run("--profile", "bob", *command)
        assert result.exit_code == 13, (command, result.stderr)
        assert RoomLink.parse(new).token not in result.stderr + result.stdout
    as_json = w.run("--json", "--profile", "bob", "room", "ask", new, QUESTION)
    assert as_json.exit_code == 13
    assert sup.json.loads(as_json.stdout)["exit_code"] == 13
    assert w.json("--profile", "alice", "room", "share-link", "show", room_id)["enabled"] is False
    # invites are not affected by the share link
    assert w.json("--profile", "bob", "-y", "room", "ask", created["link"], QUESTION)[
        "attestation_ok"
    ]
    missing = w.run("--profile", "alice", "room", "share-link", "rotate", room_id)
    assert missing.exit_code == 3  # nothing to rotate

    # deleting the room disables a fresh share link with it
    again = _share(w, room_id)
    deleted = w.ok("--profile", "alice", "-y", "room", "delete", room_id)
    assert "share link disabled" in deleted.stdout
    assert w.run("--profile", "bob", "room", "inspect", again).exit_code == 13


def test_share_link_ask_needs_the_holders_own_payer_key(ready):
    w = ready
    link = _share(w, w.create_room()["room_id"])
    w.ok("-y", "profile", "remove", "bob")
    w.ok("profile", "use", "alice")
    w.ok("-y", "profile", "remove", "alice")
    result = w.run("room", "ask", link, "hi")
    assert result.exit_code == 2
    assert "tenant key to pay" in result.stderr
    malformed = w.run("room", "inspect", link.replace("share=hms_", "share=hmq_"))
    assert malformed.exit_code == 2
    assert "cannot stand in share=" in malformed.stderr
    both = w.run("room", "inspect", link + "&token=hmq_" + "a" * 43)
    assert both.exit_code == 2
    assert "exactly one" in both.stderr
