"""Damaged vault items are refused with a code; revoking a room destroys its key.

The offline checks read the tenant database file directly with ``sqlite3``,
as someone holding a copy of the data directory and the owner key would.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hivemind_rooms.canonical import b64_decode
from hivemind_rooms.storage import TenantStore
from hivemind_rooms.storage._db import SqliteFile
from hivemind_rooms.storage._schema import TENANT_MIGRATIONS
from hivemind_rooms.vault import KeyScope, KeyWrap, VaultAuthError, open_item, unwrap_key

_spec = importlib.util.spec_from_file_location(
    "test_pipeline_support", Path(__file__).with_name("test_pipeline_support.py")
)
rs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rs)
sup = rs.sup

SECRET = "CANARY-VAULT-ITEM-51c9"


def _tenant_db(data_dir: Path, tenant_id: str) -> Path:
    return data_dir / "tenants" / f"{tenant_id}.sqlite3"


def _query(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def _write(path: Path, sql: str, params: tuple[Any, ...] = ()) -> None:
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.execute(sql, params)
    finally:
        conn.close()


def _add_item(c: Any, key: str, room_id: str, text: str) -> str:
    r = c.post(f"/v1/rooms/{room_id}/data", json={"text": text}, headers=sup.auth(key))
    assert r.status_code == 200, r.text
    return str(r.json()["item_id"])


def _flip_one_byte(blob: bytes) -> bytes:
    damaged = bytearray(blob)
    damaged[len(damaged) // 2] ^= 0x01
    return bytes(damaged)


@pytest.mark.parametrize("damage", ["flipped", "moved"])
def test_damaged_vault_item_is_refused_with_a_code(tmp_path: Path, damage: str) -> None:
    with rs.client(tmp_path) as c:
        t = sup.new_tenant(c)
        key = t["api_key"]
        rs.seed(c, key)
        room = rs.make_room(c, t)
        rid = room["room_id"]
        first = _add_item(c, key, rid, SECRET)
        second = _add_item(c, key, rid, "second item")
        assert c.get(f"/v1/rooms/{rid}/data", headers=sup.auth(key)).status_code == 200
        db = _tenant_db(tmp_path, t["tenant_id"])
        (blob,) = _query(
            db, "SELECT ciphertext FROM _hivemind_room_vault_items WHERE item_id = ?", (first,)
        )[0]
        # a damaged ciphertext, or one moved from another item of the same room
        bad = _flip_one_byte(bytes(blob)) if damage == "flipped" else bytes(blob)
        target = first if damage == "flipped" else second
        _write(
            db,
            "UPDATE _hivemind_room_vault_items SET ciphertext = ? WHERE item_id = ?",
            (bad, target),
        )
        payer = sup.new_tenant(c, "bob")["api_key"]
        participant = {**sup.auth(room["token"]), "X-Hivemind-Api-Key": payer}
        runs_before = c.get("/v1/runs", headers=sup.auth(key)).json()
        ledgers_before = [rs.ledger(c, k)["ledger"] for k in (key, payer)]

        r = c.get(f"/v1/rooms/{rid}/data", headers=sup.auth(key))
        assert r.status_code == 409
        assert r.json()["error"] == "vault_item_unreadable"
        for leak in (first, second, SECRET, "Decrypt", "Traceback"):
            assert leak not in r.text

        for headers in (sup.auth(key), participant):
            r = c.post(f"/v1/rooms/{rid}/runs", json={"query": "who?"}, headers=headers)
            assert r.status_code == 409, r.text
            assert r.json()["error"] == "vault_item_unreadable"
            assert first not in r.text
            assert second not in r.text
        # no run started, no hold was taken
        assert c.get("/v1/runs", headers=sup.auth(key)).json() == runs_before
        assert [rs.ledger(c, k)["ledger"] for k in (key, payer)] == ledgers_before


def _wraps(db: Path, room_id: str) -> dict[str, str]:
    rows = _query(
        db, "SELECT wrap_id, wrapped FROM _hivemind_room_key_wraps WHERE room_id = ?", (room_id,)
    )
    return dict(rows)


def _offline_open(db: Path, tenant_id: str, room_id: str, credential: str) -> list[str]:
    """Open the room's items from the database file alone with one credential."""
    scope = KeyScope.room(tenant_id, room_id)
    (check,) = _query(db, "SELECT key_check FROM _hivemind_rooms WHERE room_id = ?", (room_id,))[0]
    items = _query(
        db,
        "SELECT item_id, ciphertext FROM _hivemind_room_vault_items WHERE room_id = ?",
        (room_id,),
    )
    texts = []
    for (stored,) in _query(db, "SELECT wrapped FROM _hivemind_room_key_wraps"):
        wrap = KeyWrap.from_dict(json.loads(stored))
        try:
            key = unwrap_key(wrap, scope, credential, b64_decode(check, length=32))
        except VaultAuthError:
            continue
        texts += [open_item(key, scope, item_id, bytes(blob))[0] for item_id, blob in items]
    return texts


def test_revoking_a_room_destroys_every_wrap_of_its_key(tmp_path: Path) -> None:
    with rs.client(tmp_path) as c:
        t = sup.new_tenant(c)
        key = t["api_key"]
        rs.seed(c, key)
        room = rs.make_room(c, t)
        other = rs.make_room(c, t)  # a live room of the same tenant keeps its wraps
        rid = room["room_id"]
        _add_item(c, key, rid, SECRET)
        assert c.post(f"/v1/rooms/{rid}/share-link", headers=sup.auth(key)).status_code == 200
        run = rs.ask(c, room, key, "who lives where?")
        assert run["status"] == "completed", run["error"]
        db = _tenant_db(tmp_path, t["tenant_id"])
        before = _wraps(db, rid)
        assert {w.split(":")[0] for w in before} == {"owner", "query", "share"}
        # before revocation, the file and the owner key are enough to open the data
        assert _offline_open(db, t["tenant_id"], rid, key) == [SECRET]

        r = c.delete(f"/v1/rooms/{rid}", headers=sup.auth(key))
        assert r.status_code == 200, r.text
        assert c.delete(f"/v1/rooms/{rid}", headers=sup.auth(key)).status_code == 404
        status = c.get(f"/v1/rooms/{rid}/key", headers=sup.auth(key)).json()
        assert status["open"] is False
        assert status["wrap_count"] == 0
        # the owner cannot open it again, and the run keeps its metadata only
        assert c.post(f"/v1/rooms/{rid}/open", headers=sup.auth(key)).status_code == 403
        kept = c.get(f"/v1/runs/{run['run_id']}", headers=sup.auth(key)).json()
        assert kept["status"] == "completed"
        assert kept["output"] is None
        assert kept["payload_sealed"] is True
        assert _wraps(db, other["room_id"])

    assert _wraps(db, rid) == {}
    assert _offline_open(db, t["tenant_id"], rid, key) == []
    assert _query(db, "SELECT revoked_at FROM _hivemind_rooms WHERE room_id = ?", (rid,))[0][0]
    kept_row = _query(
        db,
        "SELECT status, billing_status, prompt FROM _hivemind_query_runs WHERE run_id = ?",
        (run["run_id"],),
    )
    assert kept_row[0][:2] == ("completed", run["billing_status"])  # metadata and billing stay
    assert kept_row[0][2].startswith("hmsealed:1:")  # sealed, and now unopenable
    # the destroyed wraps left no copy in the file or its write-ahead log
    stored = sup.all_bytes(tmp_path)
    for text in before.values():
        ciphertext = json.loads(text)["ciphertext"]
        assert ciphertext.encode() not in stored
        assert base64.b64decode(ciphertext) not in stored


def test_rooms_revoked_by_an_earlier_version_lose_their_wraps(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite3"
    old = SqliteFile(path, TENANT_MIGRATIONS[:1])
    for room_id, revoked in (("room_revoked", 5.0), ("room_live", None)):
        old.execute(
            "INSERT INTO _hivemind_rooms (room_id, envelope, manifest_hash, scope_agent_id, "
            "query_mode, output_visibility, key_check, created_at, revoked_at) "
            "VALUES (?, '{}', 'h', 'a', 'fixed', 'owner_and_querier', 'k', 1.0, ?)",
            (room_id, revoked),
        )
        old.execute(
            "INSERT INTO _hivemind_room_key_wraps (room_id, wrap_id, wrapped, created_at) "
            "VALUES (?, 'owner', 'w', 1.0)",
            (room_id,),
        )
    old.close()
    store = TenantStore(path)
    assert store.wrap_ids("room_revoked") == []
    assert store.wrap_ids("room_live") == ["owner"]
    assert store.get_room("room_revoked") is not None
    store.close()
