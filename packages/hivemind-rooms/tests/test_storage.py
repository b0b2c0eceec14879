from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hivemind_rooms.storage import ControlStore, LedgerEntry, Storage, StorageError
from hivemind_rooms.storage._db import SqliteFile
from hivemind_rooms.storage._schema import CONTROL_MIGRATIONS


def test_files_use_wal_and_foreign_keys(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    conn = sqlite3.connect(tmp_path / "control.sqlite3")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
    versions = conn.execute("SELECT version FROM _schema_migrations").fetchall()
    assert versions == [(1,), (2,), (3,)]
    conn.close()
    assert storage.control.file.schema_version == 3
    assert storage.tenant("t_0123456789ab").file.schema_version == 2
    storage.close()


def test_migrations_apply_in_order_and_only_once(tmp_path: Path) -> None:
    path = tmp_path / "x.sqlite3"
    first = SqliteFile(path, ["CREATE TABLE a (x INTEGER)"])
    first.close()
    second = SqliteFile(path, ["CREATE TABLE a (x INTEGER)", "CREATE TABLE b (y INTEGER)"])
    assert second.schema_version == 2
    names = {r["name"] for r in second.query("SELECT name FROM sqlite_master")}
    assert {"a", "b"} <= names
    second.close()
    with pytest.raises(StorageError, match="newer"):
        SqliteFile(path, ["CREATE TABLE a (x INTEGER)"])


def test_control_database_upgrades_from_v1_keeping_data(tmp_path: Path) -> None:
    path = tmp_path / "control.sqlite3"
    old = SqliteFile(path, CONTROL_MIGRATIONS[:1])
    old.execute(
        "INSERT INTO _tenants (id, name, api_key_hash, db_name, created_at) "
        "VALUES ('t_000000000009', 'old', 'h', 'tenant_t_000000000009', 1.0)"
    )
    old.close()
    store = ControlStore(path)
    assert store.file.schema_version == 3
    assert store.get_tenant("t_000000000009")["name"] == "old"
    store.put_share_link("t_000000000009", "room_000000000001", "d" * 64, "abc", 2.0)
    assert store.get_share_link("t_000000000009", "room_000000000001")["token_id"] == "abc"
    store.close()


def test_control_database_v2_gains_invite_expiry_keeping_invites(tmp_path: Path) -> None:
    path = tmp_path / "control.sqlite3"
    old = SqliteFile(path, CONTROL_MIGRATIONS[:2])
    old.execute(
        "INSERT INTO _tenants (id, name, api_key_hash, db_name, created_at) "
        "VALUES ('t_000000000009', 'old', 'h', 'tenant_t_000000000009', 1.0)"
    )
    old.execute(
        "INSERT INTO _capability_tokens (token_hash, token_id, tenant_id, kind, created_at) "
        "VALUES ('a' || printf('%063d', 0), 'aaaaaaaaaaaa', 't_000000000009', 'query', 1.0)"
    )
    columns = {r["name"] for r in old.query("PRAGMA table_info(_capability_tokens)")}
    assert "expires_at" not in columns
    old.close()
    store = ControlStore(path)
    assert store.file.schema_version == 3
    columns = {r["name"] for r in store.file.query("PRAGMA table_info(_capability_tokens)")}
    assert "expires_at" in columns
    (kept,) = store.list_tokens("t_000000000009")
    assert kept["token_id"] == "aaaaaaaaaaaa"
    assert kept["expires_at"] is None  # invites minted before the upgrade never expire
    store.insert_token("b" * 64, "bbbbbbbbbbbb", "t_000000000009", "", {}, 2.0, 62.0)
    assert store.token_by_hash("b" * 64)["expires_at"] == 62.0
    store.close()


def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    f = SqliteFile(tmp_path / "t.sqlite3", ["CREATE TABLE a (x INTEGER)"])

    def write_then_fail() -> None:
        with f.transaction() as db:
            db.execute("INSERT INTO a VALUES (1)")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_then_fail()
    assert f.query("SELECT * FROM a") == []
    f.close()
    with pytest.raises(StorageError):
        f.query("SELECT 1")


def test_ledger_is_append_only(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    storage.control.insert_tenant("t_000000000001", "a", "h" * 64, 1.0)
    entry = LedgerEntry("ble_1", "t_000000000001", 1.0, "credit_grant", 5)
    storage.control.append_ledger([entry])
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        storage.control.file.execute("UPDATE _billing_ledger SET amount_micro_usd = 9")
    assert storage.control.balance("t_000000000001") == 5
    storage.close()


def test_tenant_delete_cascades_and_drops_file(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    tid = "t_00000000000a"
    storage.control.insert_tenant(tid, "a", "h" * 64, 1.0)
    storage.control.insert_token("k" * 64, "a" * 12, tid, "room:x", {"room_id": "room_x"}, 1.0)
    storage.control.append_ledger([LedgerEntry("ble_2", tid, 1.0, "credit_grant", 5)])
    store = storage.tenant(tid)
    assert store.user_tables() == []
    assert storage.tenant_path(tid).exists()
    assert storage.control.delete_tenant(tid)
    storage.drop_tenant(tid)
    assert not storage.tenant_path(tid).exists()
    assert storage.control.token_by_hash("k" * 64) is None
    assert storage.control.ledger(tid, 10) == []
    storage.close()


def test_malformed_tenant_id_never_becomes_a_path(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    for bad in ("../x", "t_ABC", "t_0123456789ab/../../x", ""):
        with pytest.raises(StorageError):
            storage.tenant(bad)
    storage.close()


def test_sqlite_stores_implement_exactly_the_interface(tmp_path: Path) -> None:
    import inspect

    from hivemind_rooms.storage import ControlStoreProtocol, TenantStore, TenantStoreProtocol

    def public(cls) -> dict[str, inspect.Signature]:
        return {
            n: inspect.signature(f)
            for n, f in inspect.getmembers(cls, inspect.isfunction)
            if not n.startswith("_")
        }

    for impl, proto in ((ControlStore, ControlStoreProtocol), (TenantStore, TenantStoreProtocol)):
        assert public(impl) == public(proto)
    storage = Storage(tmp_path)
    assert isinstance(storage.control, ControlStoreProtocol)
    assert isinstance(storage.tenant("t_0123456789ab"), TenantStoreProtocol)
    storage.close()
