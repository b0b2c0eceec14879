from __future__ import annotations

import importlib.util
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from hivemind_rooms.links import RoomLink
from hivemind_rooms.manifest import OwnerKey

_spec = importlib.util.spec_from_file_location(
    "api_support", Path(__file__).with_name("api_support.py")
)
sup = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sup)


def test_per_participant_invites(tmp_path: Path) -> None:
    with sup.client(tmp_path) as c:
        t = sup.new_tenant(c)
        key = sup.auth(t["api_key"])
        room = sup.make_room(c, t, OwnerKey.generate())
        rid = room["room_id"]
        r = c.post(f"/v1/rooms/{rid}/invites", headers=key)
        assert r.status_code == 200, r.text
        second = r.json()
        assert second["token_id"] != room["token_id"]
        assert RoomLink.parse(second["link"]).token == second["token"]
        assert c.get(f"/v1/rooms/{rid}/key", headers=key).json()["wrap_count"] == 3
        # each participant's invite is revocable on its own
        c.delete(f"/v1/tenant/tokens/{room['token_id']}", headers=key)
        assert c.get(f"/v1/rooms/{rid}", headers=sup.auth(room["token"])).status_code == 401
        assert c.get(f"/v1/rooms/{rid}", headers=sup.auth(second["token"])).status_code == 200
    with sup.client(tmp_path) as c:  # after a restart the second invite opens the room
        assert c.post(f"/v1/rooms/{rid}/invites", headers=key).status_code == 503
        r = c.post(f"/v1/rooms/{rid}/open", headers=sup.auth(second["token"]))
        assert r.status_code == 200
        assert r.json()["open"] is True


def test_share_link_lifecycle(tmp_path: Path) -> None:
    with sup.client(tmp_path) as c:
        t = sup.new_tenant(c)
        key = sup.auth(t["api_key"])
        room = sup.make_room(c, t, OwnerKey.generate())
        rid = room["room_id"]
        assert c.get(f"/v1/rooms/{rid}/share-link", headers=key).json() == {
            "enabled": False,
            "room_id": rid,
        }
        assert c.post(f"/v1/rooms/{rid}/share-link/rotate", headers=key).status_code == 404
        created = c.post(f"/v1/rooms/{rid}/share-link", headers=key).json()
        token = created["share_token"]
        assert token.startswith("hms_")
        query = parse_qs(urlsplit(created["link"]).query)
        assert query["share"] == [token]
        assert query["service"] == ["http://testserver"]
        again = c.post(f"/v1/rooms/{rid}/share-link", headers=key).json()
        assert again["enabled"] is True
        assert again["share_token"] is None  # never shown twice
        assert again["prefix"] == created["prefix"]
        share = sup.auth(token)
        assert [r["room_id"] for r in c.get("/v1/rooms", headers=share).json()["rooms"]] == [rid]
        assert c.post(f"/v1/rooms/{rid}/open", headers=share).status_code == 200
        assert c.get("/v1/runs", headers=share).json() == []
        assert c.get(f"/v1/rooms/{rid}/data", headers=share).status_code == 403
        assert c.get("/v1/room-agents", headers=share).status_code == 403
        rotated = c.post(f"/v1/rooms/{rid}/share-link/rotate", headers=key).json()
        assert rotated["share_token"] != token
        assert c.get("/v1/rooms", headers=share).status_code == 401
        share = sup.auth(rotated["share_token"])
        assert c.get(f"/v1/rooms/{rid}", headers=share).status_code == 200
        assert c.get(f"/v1/rooms/{rid}/key", headers=key).json()["wrap_count"] == 3
        r = c.delete(f"/v1/rooms/{rid}/share-link", headers=key)
        assert r.json() == {"enabled": False, "room_id": rid}
        assert c.get(f"/v1/rooms/{rid}", headers=share).status_code == 401
        assert c.get(f"/v1/rooms/{rid}/key", headers=key).json()["wrap_count"] == 2


def test_share_link_reaches_only_its_room_and_dies_with_it(tmp_path: Path) -> None:
    owner = OwnerKey.generate()
    with sup.client(tmp_path) as c:
        t = sup.new_tenant(c)
        key = sup.auth(t["api_key"])
        first, second = sup.make_room(c, t, owner), sup.make_room(c, t, owner)
        token = c.post(f"/v1/rooms/{first['room_id']}/share-link", headers=key).json()
        share = sup.auth(token["share_token"])
        assert c.get(f"/v1/rooms/{second['room_id']}", headers=share).status_code == 403
        listed = c.get("/v1/rooms", headers=share).json()["rooms"]
        assert [r["room_id"] for r in listed] == [first["room_id"]]
        r = c.delete(f"/v1/rooms/{first['room_id']}", headers=key)
        assert r.json()["share_link_disabled"] is True
        assert c.get("/v1/rooms", headers=share).status_code == 401
    assert token["share_token"].encode() not in sup.all_bytes(tmp_path)
