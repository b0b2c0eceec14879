from __future__ import annotations

import importlib.util
import tarfile
from pathlib import Path

from hivemind_rooms.links import RoomLink
from hivemind_rooms.manifest import OwnerKey, sign_trust_update

_spec = importlib.util.spec_from_file_location(
    "api_support", Path(__file__).with_name("api_support.py")
)
sup = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sup)

CANARY_DATA = "CANARY-ROOM-DATA-91b2"
CANARY_SOURCE = b"CANARY-SEALED-SOURCE-44e1"


def test_agent_upload_listing_and_files(tmp_path: Path) -> None:
    with sup.client(tmp_path) as c:
        t = sup.new_tenant(c)
        r = sup.upload_agent(c, t["api_key"], name="scoper")
        assert r.status_code == 200, r.text
        agent_id = r.json()["agent_id"]
        run = c.get(f"/v1/runs/{r.json()['run_id']}", headers=sup.auth(t["api_key"])).json()
        assert run["status"] == "completed"
        listed = c.get("/v1/room-agents?type=scope", headers=sup.auth(t["api_key"])).json()
        assert [a["agent_id"] for a in listed] == [agent_id]
        assert c.get("/v1/room-agents?type=query", headers=sup.auth(t["api_key"])).json() == []
        files = c.get(f"/v1/room-agents/{agent_id}/files", headers=sup.auth(t["api_key"])).json()
        assert {f["path"] for f in files["files"]} == {
            "Dockerfile",
            "agent.py",
            "prompts/secret.txt",
        }
        r = c.get(
            f"/v1/room-agents/{agent_id}/files/prompts/secret.txt", headers=sup.auth(t["api_key"])
        )
        assert r.status_code == 200
        assert r.text == "private prompt\n"
        assert r.headers["content-type"].startswith("text/plain")
        att = c.get(f"/v1/room-agents/{agent_id}/attest", headers=sup.auth(t["api_key"])).json()
        assert att["files_count"] == 3
        assert att["attestation"]["ready"] is True
        assert att["attestation"]["label"] == "unattested"  # the dev provider
        assert c.delete(f"/v1/room-agents/{agent_id}", headers=sup.auth(t["api_key"])).json() == {
            "status": "ok"
        }
        assert (
            c.get(f"/v1/room-agents/{agent_id}", headers=sup.auth(t["api_key"])).status_code == 404
        )


def test_hostile_upload_stores_nothing(tmp_path: Path) -> None:
    bad = [
        sup.archives.tar_gz(
            [
                sup.archives.file("Dockerfile", b"FROM x"),
                sup.archives.special("l", tarfile.SYMTYPE, "/etc/shadow"),
            ]
        ),
        sup.archives.tar_gz(
            [sup.archives.file("Dockerfile", b"FROM x"), sup.archives.file("../../evil", b"x")]
        ),
        sup.archives.tar_gz(
            [sup.archives.file("Dockerfile", b"FROM x"), sup.archives.special("d", tarfile.CHRTYPE)]
        ),
        sup.archives.tar_gz([sup.archives.file("main.py", b"print()")]),
        b"not an archive",
    ]
    with sup.client(tmp_path) as c:
        t = sup.new_tenant(c)
        before = sup.db_state(tmp_path)
        for archive in bad:
            r = sup.upload_agent(c, t["api_key"], archive=archive)
            assert r.status_code == 400, r.text
            assert r.json()["detail"].startswith("invalid agent archive")
        r = c.post("/v1/room-agents", data={"name": "x"}, headers=sup.auth(t["api_key"]))
        assert r.status_code in (400, 415)
        r = sup.upload_agent(c, t["api_key"], agent_type="boss")
        assert r.status_code == 400
        assert sup.db_state(tmp_path) == before


def test_archive_size_limit(tmp_path: Path) -> None:
    with sup.client(tmp_path, max_archive_bytes=2048) as c:
        t = sup.new_tenant(c)
        import os

        big = sup.archives.tar_gz(
            [
                sup.archives.file("Dockerfile", b"FROM x"),
                sup.archives.file("blob", os.urandom(200_000)),
            ]
        )
        r = sup.upload_agent(c, t["api_key"], archive=big)
        assert r.status_code == 413


def test_sealed_agent_source_is_never_served_or_stored_plain(tmp_path: Path) -> None:
    with sup.client(tmp_path) as c:
        t = sup.new_tenant(c)
        r = sup.upload_agent(
            c,
            t["api_key"],
            mode="sealed",
            agent_type="query",
            archive=sup.archives.good_agent(CANARY_SOURCE),
        )
        assert r.status_code == 200, r.text
        agent_id = r.json()["agent_id"]
        r = c.get(f"/v1/room-agents/{agent_id}/files/agent.py", headers=sup.auth(t["api_key"]))
        assert r.status_code == 403
        files = c.get(f"/v1/room-agents/{agent_id}/files", headers=sup.auth(t["api_key"])).json()
        assert len(files["files"]) == 3
        att = c.get(f"/v1/room-agents/{agent_id}/attest", headers=sup.auth(t["api_key"])).json()
        assert len(att["files_digest_sha256"]) == 64
        assert c.get("/v1/whoami", headers=sup.auth(t["api_key"])).json()["sealed"] is False
    assert CANARY_SOURCE not in sup.all_bytes(tmp_path)
    with sup.client(tmp_path) as c:
        # after a restart the tenant seal is closed until the owner presents the key
        assert c.get("/v1/whoami", headers=sup.auth(t["api_key"])).json()["sealed"] is True
        r = sup.upload_agent(c, t["api_key"], mode="sealed", agent_type="query")
        assert r.status_code == 200
        assert c.get("/v1/whoami", headers=sup.auth(t["api_key"])).json()["sealed"] is False


def test_room_create_inspect_and_link(tmp_path: Path) -> None:
    owner = OwnerKey.generate()
    with sup.client(tmp_path) as c:
        t = sup.new_tenant(c)
        created = sup.make_room(c, t, owner, name="Room A", rules="be nice")
        link = RoomLink.parse(created["link"])
        assert link.room_id == created["room_id"]
        assert link.token == created["token"]
        assert link.owner_pubkey_b64 == owner.public_key_b64()
        assert link.service_url == "http://testserver"
        room = c.get(f"/v1/rooms/{created['room_id']}", headers=sup.auth(t["api_key"])).json()
        assert room["manifest"]["name"] == "Room A"
        assert room["manifest_hash"] == created["room"]["manifest_hash"]
        assert room["revoked_at"] is None
        invite = sup.auth(created["token"])
        who = c.get("/v1/whoami", headers=invite).json()
        assert who["role"] == "query"
        assert who["constraints"]["room_id"] == created["room_id"]
        assert c.get(f"/v1/rooms/{created['room_id']}", headers=invite).status_code == 200
        assert [r["room_id"] for r in c.get("/v1/rooms", headers=invite).json()["rooms"]] == [
            created["room_id"]
        ]
        att = c.get(f"/v1/rooms/{created['room_id']}/attest", headers=invite).json()
        assert att["scope_agent"]["agent_id"] == room["scope_agent_id"]
        assert att["query_agent"] is None
        # agents visible to the invite: only the room's own
        other = sup.upload_agent(c, t["api_key"], name="unrelated").json()["agent_id"]
        visible = [a["agent_id"] for a in c.get("/v1/room-agents", headers=invite).json()]
        assert visible == [room["scope_agent_id"]]
        assert c.get(f"/v1/room-agents/{other}", headers=invite).status_code == 404
        tokens = c.get("/v1/tenant/tokens", headers=sup.auth(t["api_key"])).json()["tokens"]
        assert [x["token_id"] for x in tokens] == [created["token_id"]]


def test_room_registration_is_checked(tmp_path: Path) -> None:
    owner, stranger = OwnerKey.generate(), OwnerKey.generate()
    with sup.client(tmp_path) as c:
        t = sup.new_tenant(c)
        key = sup.auth(t["api_key"])
        scope = sup.upload_agent(c, t["api_key"]).json()["agent_id"]
        cases = []
        env = sup.signed_room(t["tenant_id"], owner, scope)
        env["manifest"]["name"] = "tampered"
        cases.append((env, 400))
        cases.append((sup.signed_room("t_0123456789ab", owner, scope), 400))  # other tenant
        cases.append((sup.signed_room(t["tenant_id"], owner, "nosuchagent"), 404))
        cases.append(
            (sup.signed_room(t["tenant_id"], owner, scope, scope_visibility="sealed"), 400)
        )
        cases.append(
            (sup.signed_room(t["tenant_id"], owner, scope, allowed_tables=["missing_table"]), 400)
        )
        before = sup.db_state(tmp_path)
        for envelope, status in cases:
            r = c.post("/v1/rooms", json={"envelope": envelope}, headers=key)
            assert r.status_code == status, r.text
        assert c.post("/v1/rooms", json={"envelope": "x"}, headers=key).status_code == 422
        assert c.post("/v1/rooms", json={"envelope": {}, "x": 1}, headers=key).status_code == 422
        assert sup.db_state(tmp_path) == before
        good = sup.signed_room(t["tenant_id"], owner, scope)
        assert c.post("/v1/rooms", json={"envelope": good}, headers=key).status_code == 200
        assert c.post("/v1/rooms", json={"envelope": good}, headers=key).status_code == 409
        # the first room registered the owner key: another key is refused
        r = c.post(
            "/v1/rooms",
            json={"envelope": sup.signed_room(t["tenant_id"], stranger, scope)},
            headers=key,
        )
        assert r.status_code == 400
        assert "owner" in r.json()["detail"]


def test_tables_and_owner_sql(tmp_path: Path) -> None:
    owner = OwnerKey.generate()
    with sup.client(tmp_path) as c:
        t = sup.new_tenant(c)
        key = sup.auth(t["api_key"])
        r = c.post("/v1/tenant/sql", json={"sql": "CREATE TABLE watch (title TEXT)"}, headers=key)
        assert r.status_code == 200, r.text
        c.post("/v1/tenant/sql", json={"sql": "CREATE TABLE hidden (x TEXT)"}, headers=key)
        r = c.post(
            "/v1/tenant/sql",
            json={"sql": "INSERT INTO watch VALUES (?)", "params": ["film"]},
            headers=key,
        )
        assert r.json()["rowcount"] == 1
        assert c.post("/v1/tenant/sql", json={"sql": "SELECT * FROM watch"}, headers=key).json()[
            "rows"
        ] == [{"title": "film"}]
        for bad in (
            "SELECT * FROM _hivemind_rooms",
            "DROP TABLE _hivemind_agents",
            "SELECT name FROM sqlite_master",
            "ATTACH DATABASE 'x' AS y",
        ):
            assert c.post("/v1/tenant/sql", json={"sql": bad}, headers=key).status_code == 400
        created = sup.make_room(c, t, owner, allowed_tables=["watch"])
        schema = c.get("/v1/admin/schema", headers=sup.auth(created["token"])).json()["schema"]
        assert {row["table_name"] for row in schema} == {"watch"}
        schema = c.get("/v1/admin/schema", headers=key).json()["schema"]
        assert {row["table_name"] for row in schema} == {"watch", "hidden"}


def test_vault_data_restart_property(tmp_path: Path) -> None:
    owner = OwnerKey.generate()
    with sup.client(tmp_path) as c:
        t = sup.new_tenant(c)
        created = sup.make_room(c, t, owner)
        rid, key, invite = created["room_id"], sup.auth(t["api_key"]), sup.auth(created["token"])
        r = c.post(
            f"/v1/rooms/{rid}/data",
            json={"text": CANARY_DATA, "metadata": {"source": "CANARY-META-5"}},
            headers=key,
        )
        assert r.status_code == 200, r.text
        assert r.json()["item_id"].startswith("rvi_")
        items = c.get(f"/v1/rooms/{rid}/data", headers=key).json()["items"]
        assert [(i["text"], i["metadata"]) for i in items] == [
            (CANARY_DATA, {"source": "CANARY-META-5"})
        ]
        assert c.get(f"/v1/rooms/{rid}/data", headers=invite).status_code == 403
        assert (
            c.post(f"/v1/rooms/{rid}/data", json={"text": "x"}, headers=invite).status_code == 403
        )
        status = c.get(f"/v1/rooms/{rid}/key", headers=key).json()
        assert status == {"room_id": rid, "open": True, "wrap_count": 2, "item_count": 1}
    stored = sup.all_bytes(tmp_path)
    assert CANARY_DATA.encode() not in stored
    assert b"CANARY-META-5" not in stored
    with sup.client(tmp_path) as c:  # a restart: the keyring is empty
        assert c.get(f"/v1/rooms/{rid}/key", headers=key).json()["open"] is False
        r = c.get(f"/v1/rooms/{rid}/data", headers=key)
        assert r.status_code == 503
        assert r.json()["error"] == "room_sealed"
        assert c.post(f"/v1/rooms/{rid}/data", json={"text": "y"}, headers=key).status_code == 503
        # a wrong credential never opens the room
        other = sup.make_room(c, t, owner)
        r = c.post(f"/v1/rooms/{rid}/open", headers=sup.auth(other["token"]))
        assert r.status_code == 403
        assert c.get(f"/v1/rooms/{rid}/key", headers=key).json()["open"] is False
        # the participant's invite re-opens it
        r = c.post(f"/v1/rooms/{rid}/open", headers=invite)
        assert r.status_code == 200, r.text
        assert r.json()["open"] is True
        items = c.get(f"/v1/rooms/{rid}/data", headers=key).json()["items"]
        assert [i["text"] for i in items] == [CANARY_DATA]


def test_wrong_tenant_sees_nothing(tmp_path: Path) -> None:
    with sup.client(tmp_path) as c:
        a, b = sup.new_tenant(c, "a"), sup.new_tenant(c, "b")
        room = sup.make_room(c, a, OwnerKey.generate())
        rid = room["room_id"]
        agent = room["room"]["scope_agent_id"]
        kb = sup.auth(b["api_key"])
        for path in (
            f"/v1/rooms/{rid}",
            f"/v1/rooms/{rid}/key",
            f"/v1/rooms/{rid}/data",
            f"/v1/rooms/{rid}/attest",
            f"/v1/room-agents/{agent}",
            f"/v1/room-agents/{agent}/files",
            f"/v1/room-agents/{agent}/files/agent.py",
        ):
            assert c.get(path, headers=kb).status_code == 404, path
        assert c.post(f"/v1/rooms/{rid}/open", headers=kb).status_code == 404
        assert c.delete(f"/v1/rooms/{rid}", headers=kb).status_code == 404
        assert c.get("/v1/rooms", headers=kb).json() == {"rooms": []}
        assert c.get("/v1/room-agents", headers=kb).json() == []
        assert c.get("/v1/tenant/tokens", headers=kb).json() == {"tokens": []}


def test_invite_reaches_only_its_room(tmp_path: Path) -> None:
    owner = OwnerKey.generate()
    with sup.client(tmp_path) as c:
        t = sup.new_tenant(c)
        first, second = sup.make_room(c, t, owner), sup.make_room(c, t, owner)
        invite = sup.auth(first["token"])
        rid = second["room_id"]
        for method, path in [
            ("GET", f"/v1/rooms/{rid}"),
            ("GET", f"/v1/rooms/{rid}/key"),
            ("GET", f"/v1/rooms/{rid}/attest"),
            ("POST", f"/v1/rooms/{rid}/open"),
        ]:
            assert c.request(method, path, headers=invite).status_code == 403, path
        for method, path in [
            ("GET", f"/v1/rooms/{rid}/data"),
            ("POST", f"/v1/rooms/{rid}/trust"),
            ("DELETE", f"/v1/rooms/{rid}"),
            ("POST", "/v1/tenant/rotate-key"),
            ("GET", "/v1/billing"),
            ("POST", "/v1/room-agents"),
        ]:
            assert c.request(method, path, headers=invite).status_code == 403, path


def test_trust_update_and_revocation(tmp_path: Path) -> None:
    owner = OwnerKey.generate()
    with sup.client(tmp_path) as c:
        t = sup.new_tenant(c)
        key = sup.auth(t["api_key"])
        created = sup.make_room(c, t, owner)
        rid = created["room_id"]
        manifest = created["room"]["manifest"]
        update = sign_trust_update(
            manifest,
            owner,
            mode="pinned",
            allowed_composes=["ab" * 32],
            updated_at=manifest["created_at"] + 1,
        )
        r = c.post(f"/v1/rooms/{rid}/trust", json={"envelope": update}, headers=key)
        assert r.status_code == 200, r.text
        assert r.json()["room"]["manifest"]["trust"]["mode"] == "pinned"
        assert r.json()["room"]["manifest_hash"] != created["room"]["manifest_hash"]
        forged = sign_trust_update(
            manifest, owner, mode="operator_updates", updated_at=manifest["created_at"]
        )
        forged["manifest"]["name"] = "changed"
        assert (
            c.post(f"/v1/rooms/{rid}/trust", json={"envelope": forged}, headers=key).status_code
            == 400
        )
        scope_id = created["room"]["scope_agent_id"]
        assert c.delete(f"/v1/room-agents/{scope_id}", headers=key).status_code == 409
        r = c.delete(f"/v1/rooms/{rid}", headers=key)
        assert r.json() == {
            "status": "ok",
            "room_id": rid,
            "invites_revoked": 1,
            "share_link_disabled": False,
        }
        assert c.delete(f"/v1/rooms/{rid}", headers=key).status_code == 404
        assert c.get(f"/v1/rooms/{rid}", headers=sup.auth(created["token"])).status_code == 401
        room = c.get(f"/v1/rooms/{rid}", headers=key).json()
        assert room["revoked_at"] is not None
        assert c.post(f"/v1/rooms/{rid}/open", headers=key).status_code == 403
        assert c.delete(f"/v1/room-agents/{scope_id}", headers=key).status_code == 200


def test_token_revocation_by_prefix(tmp_path: Path) -> None:
    with sup.client(tmp_path) as c:
        t = sup.new_tenant(c)
        key = sup.auth(t["api_key"])
        created = sup.make_room(c, t, OwnerKey.generate())
        assert c.delete("/v1/tenant/tokens/xyz", headers=key).status_code == 400
        assert c.delete("/v1/tenant/tokens/000000", headers=key).status_code in (404,)
        r = c.delete(f"/v1/tenant/tokens/{created['token_id'][:6]}", headers=key)
        assert r.json() == {"status": "ok", "token_id": created["token_id"]}
        assert c.get("/v1/whoami", headers=sup.auth(created["token"])).status_code == 401
        tokens = c.get("/v1/tenant/tokens", headers=key).json()["tokens"]
        assert tokens[0]["revoked_at"] is not None


def test_key_rotation_keeps_seal_and_rooms_usable(tmp_path: Path) -> None:
    owner = OwnerKey.generate()
    with sup.client(tmp_path) as c:
        t = sup.new_tenant(c)
        created = sup.make_room(c, t, owner)
        rid = created["room_id"]
        c.post(f"/v1/rooms/{rid}/data", json={"text": "kept"}, headers=sup.auth(t["api_key"]))
        sup.upload_agent(c, t["api_key"], mode="sealed", agent_type="query")
        r = c.post("/v1/tenant/rotate-key", headers=sup.auth(t["api_key"]))
        assert r.status_code == 200, r.text
        new = r.json()["api_key"]
        assert c.get("/v1/whoami", headers=sup.auth(t["api_key"])).status_code == 401
    with sup.client(tmp_path) as c:  # restart, then only the new key may open things
        assert c.post(f"/v1/rooms/{rid}/open", headers=sup.auth(new)).status_code == 200
        items = c.get(f"/v1/rooms/{rid}/data", headers=sup.auth(new)).json()["items"]
        assert [i["text"] for i in items] == ["kept"]
        r = sup.upload_agent(c, new, mode="sealed", agent_type="query")
        assert r.status_code == 200, r.text
        room = c.get(f"/v1/rooms/{rid}", headers=sup.auth(new))
        assert room.status_code == 200


def test_credentials_are_not_stored_in_plaintext(tmp_path: Path) -> None:
    with sup.client(tmp_path, self_serve_signup=True) as c:
        t = sup.new_tenant(c)
        created = sup.make_room(c, t, OwnerKey.generate())
        code = c.post(
            "/v1/admin/credit-codes",
            json={"credit_usd": "1", "uses": 3},
            headers=sup.admin_headers(),
        ).json()["code"]
        bob = c.post("/v1/signup", json={"name": "bob"}).json()
        c.post(
            "/v1/billing/credit-codes/redeem", json={"code": code}, headers=sup.auth(bob["api_key"])
        )
        rotated = c.post("/v1/tenant/rotate-key", headers=sup.auth(t["api_key"])).json()
        secrets = [
            t["api_key"],
            created["token"],
            code,
            bob["api_key"],
            rotated["api_key"],
            sup.ADMIN,
        ]
    stored = sup.all_bytes(tmp_path)
    assert stored
    for secret in secrets:
        assert secret.encode() not in stored
        assert secret[4:].encode() not in stored  # not even without its prefix


def test_run_submission_preflight(tmp_path: Path) -> None:
    with sup.client(tmp_path) as c:
        t, payer = sup.new_tenant(c, "owner"), sup.new_tenant(c, "payer")
        created = sup.make_room(c, t, OwnerKey.generate(), mediator_agent_id="")
        rid = created["room_id"]
        query_agent = sup.upload_agent(c, t["api_key"], agent_type="query").json()["agent_id"]
        invite = sup.auth(created["token"])
        paying = {**invite, "X-Hivemind-Api-Key": payer["api_key"]}
        url = f"/v1/rooms/{rid}/runs"
        good = {"query": "hi", "query_agent_id": query_agent}
        before = sup.db_state(tmp_path)
        cases = [
            (invite, {"query": "hi", "policy": "override"}, 422),
            (invite, {"query": "  ", "query_agent_id": query_agent}, 422),
            (invite, {"query": "hi", "max_tokens": 0, "query_agent_id": query_agent}, 422),
            (invite, {"query": "hi"}, 400),
            (invite, {**good, "mediator_agent_id": "someone-else"}, 400),
            (invite, {**good, "provider": "tinfoil"}, 400),
            (invite, {"query": "hi", "query_agent_id": "nosuchagent"}, 404),
            (invite, good, 402),
            ({**invite, "X-Hivemind-Api-Key": "hmk_" + "A" * 43}, good, 401),
            ({**paying, "X-Hivemind-Idempotency-Key": "NOT-HEX"}, good, 400),
        ]
        for headers, body, status in cases:
            r = c.post(url, json=body, headers=headers)
            assert r.status_code == status, (body, r.text)
        assert c.get("/v1/runs", headers=invite).json() == []
        assert c.get("/v1/runs/abcdefabcdef", headers=sup.auth(t["api_key"])).status_code == 404
        assert sup.db_state(tmp_path) == before  # no run rows, no holds
        # a participant may only run a query agent it uploaded into this room
        assert c.post(url, json=good, headers=paying).status_code == 403
        assert c.post(url, json=good, headers=sup.auth(t["api_key"])).status_code == 200
        r = c.post(f"/v1/rooms/{rid}/query-agents", headers=invite)
        assert r.status_code == 415  # uploads are multipart
    with sup.client(tmp_path) as c:
        owner = sup.auth(t["api_key"])
        assert c.get(f"/v1/rooms/{rid}/key", headers=owner).json()["open"] is False  # restarted
        wrong = {**good, "query_agent_id": "nosuchagent"}
        assert c.post(url, json=wrong, headers=owner).status_code == 404  # refused before opening
        assert c.get(f"/v1/rooms/{rid}/key", headers=owner).json()["open"] is False
        # a run presents its credential, so it opens the sealed room itself
        assert c.post(url, json=good, headers=owner).status_code == 200
        assert c.get(f"/v1/rooms/{rid}/key", headers=owner).json()["open"] is True


def test_admin_key_reset_does_not_inherit_open_rooms(tmp_path: Path) -> None:
    with sup.client(tmp_path) as c:
        t = sup.new_tenant(c)
        created = sup.make_room(c, t, OwnerKey.generate())
        rid = created["room_id"]
        c.post(f"/v1/rooms/{rid}/data", json={"text": "secret"}, headers=sup.auth(t["api_key"]))
        reset = c.post(
            f"/v1/admin/tenants/{t['tenant_id']}/reset-key",
            json={"clear_seal": True},
            headers=sup.admin_headers(),
        ).json()
        new = sup.auth(reset["api_key"])
        # the warm key was dropped with the reset: nothing is readable
        assert c.get(f"/v1/rooms/{rid}/data", headers=new).status_code == 503
        # and the new key cannot open the wrap made for the old one
        assert c.post(f"/v1/rooms/{rid}/open", headers=new).status_code == 503
        assert c.get(f"/v1/rooms/{rid}/key", headers=new).json()["open"] is False
        # once a participant opens the room, the new key still cannot read it
        assert (
            c.post(f"/v1/rooms/{rid}/open", headers=sup.auth(created["token"])).status_code == 200
        )
        assert c.get(f"/v1/rooms/{rid}/data", headers=new).status_code == 503
