from __future__ import annotations

import json
import sqlite3

import pytest
import redis
from hivemind_hub import Client, StoreError
from hivemind_hub.store import (
    SCHEMA_VERSION,
    JSONClientStore,
    RedisClientStore,
    SQLiteClientStore,
    migrate_store,
    open_store,
    store_path,
)

UPSTREAM_V1_DDL = """
CREATE TABLE clients (
    client_id INTEGER PRIMARY KEY, api_key VARCHAR(255) NOT NULL, name VARCHAR(255),
    description VARCHAR(255), is_admin BOOLEAN DEFAULT FALSE, last_seen REAL DEFAULT -1,
    intent_blacklist TEXT, skill_blacklist TEXT, message_blacklist TEXT, allowed_types TEXT,
    crypto_key VARCHAR(16), password TEXT, can_broadcast BOOLEAN DEFAULT TRUE,
    can_escalate BOOLEAN DEFAULT TRUE, can_propagate BOOLEAN DEFAULT TRUE)
"""


def write_v1_sqlite(path):
    conn = sqlite3.connect(path)
    conn.execute(UPSTREAM_V1_DDL)
    conn.execute(
        "INSERT INTO clients VALUES (1, 'key-a', 'a', '', 1, 5.0, '[\"i1\"]', '[\"s1\"]',"
        " '[\"speak\"]', '[\"recognizer_loop:utterance\"]', 'ckey', 'pw', 1, 0, 1)"
    )
    conn.execute("INSERT INTO clients (client_id, api_key) VALUES (2, 'revoked')")
    conn.commit()
    conn.close()


def test_sqlite_v1_file_is_migrated_once(tmp_path):
    path = tmp_path / "clients.db"
    write_v1_sqlite(path)
    with SQLiteClientStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        a = store.get(1)
        assert a.is_admin is True
        assert a.can_escalate is False
        assert a.intent_blacklist == ("i1",)
        assert a.skill_blacklist == ("s1",)
        assert a.metadata["message_blacklist"] == ["speak"]
        assert a.password == "pw"
        assert store.get_by_access_key("revoked") is None
        assert store.get_by_access_key("key-a") == a
    conn = sqlite3.connect(path)
    row = conn.execute(
        "SELECT intent_blacklist, skill_blacklist, message_blacklist, metadata"
        " FROM clients WHERE client_id = 1"
    ).fetchone()
    assert row[:3] == (None, None, None)
    assert json.loads(row[3])["skill_blacklist"] == ["s1"]
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    indexes = [r[1] for r in conn.execute("PRAGMA index_list(clients)")]
    assert "idx_clients_api_key" in indexes
    conn.close()
    # Idempotent: reopening changes nothing.
    with SQLiteClientStore(path) as store:
        assert store.get(1) == a


def test_sqlite_explicit_metadata_wins_in_migration(tmp_path):
    path = tmp_path / "clients.db"
    write_v1_sqlite(path)
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE clients ADD COLUMN metadata TEXT")
    conn.execute('UPDATE clients SET metadata = \'{"skill_blacklist": ["mine"]}\'')
    conn.commit()
    conn.close()
    with SQLiteClientStore(path) as store:
        assert store.get(1).skill_blacklist == ("mine",)
        assert store.get(1).intent_blacklist == ("i1",)


def test_json_v1_file_is_migrated(tmp_path):
    path = tmp_path / "clients.json"
    legacy = {
        "1": {
            "client_id": 1,
            "api_key": "key-a",
            "name": "a",
            "is_admin": False,
            "allowed_types": ["speak"],
            "intent_blacklist": ["i1"],
            "skill_blacklist": [],
            "message_blacklist": ["x"],
            "crypto_key": None,
            "password": "pw",
        },
        "2": {"client_id": 2, "api_key": "revoked"},
    }
    path.write_text(json.dumps(legacy))
    store = JSONClientStore(path)
    assert store.schema_version == 2
    assert (tmp_path / "clients.schema_version").read_text().strip() == "2"
    on_disk = json.loads(path.read_text())
    assert set(on_disk) == {"1", "2"}
    assert "intent_blacklist" not in on_disk["1"]
    assert "message_blacklist" not in on_disk["1"]
    assert on_disk["1"]["metadata"]["intent_blacklist"] == ["i1"]
    assert store.get_by_access_key("revoked") is None
    assert store.get_by_access_key("key-a").intent_blacklist == ("i1",)


def test_json_writes_are_atomic_and_private(tmp_path):
    path = tmp_path / "clients.json"
    store = JSONClientStore(path)
    store.create(api_key="a", password="pw")
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
    assert path.stat().st_mode & 0o077 == 0
    assert json.loads(path.read_text())["1"]["password"] == "pw"


def test_json_corrupt_file_is_a_store_error(tmp_path):
    path = tmp_path / "clients.json"
    path.write_text("{broken")
    with pytest.raises(StoreError, match="not valid JSON"):
        JSONClientStore(path)


def test_redis_key_layout(redis_options):
    store = RedisClientStore(redis_options)
    client = store.create(api_key="key-a", name="kitchen", allowed_types=["speak"])
    r = redis.Redis(host=redis_options["host"], port=redis_options["port"], decode_responses=True)
    p = redis_options["index_prefix"]
    assert Client.from_json(r.get(f"{p}:client:1")) == client
    assert r.smembers(f"{p}:api_key:key-a") == {"1"}
    assert r.smembers(f"{p}:name:kitchen") == {"1"}
    assert r.hgetall(f"{p}:idx:1") == {"name": "kitchen", "api_key": "key-a"}
    assert r.get(f"{p}:count") == "1"
    assert r.get(f"{p}:id_seq") == "1"
    assert r.get(f"{p}:schema_version") == "2"
    store.delete(1)
    assert r.get(f"{p}:client:1") is None
    assert r.smembers(f"{p}:api_key:key-a") == set()
    assert r.get(f"{p}:count") == "0"
    assert r.get(f"{p}:id_seq") == "1"
    r.close()
    store.close()


def test_redis_cluster_hash_tag_prefix(redis_options):
    opts = {**redis_options, "cluster_hash_tag": "hive"}
    store = RedisClientStore(opts)
    store.create(api_key="k")
    r = redis.Redis(host=opts["host"], port=opts["port"], decode_responses=True)
    assert r.exists(f"{opts['index_prefix']}:{{hive}}:client:1")
    r.close()
    store.close()


def test_redis_v1_records_are_migrated(redis_options):
    r = redis.Redis(host=redis_options["host"], port=redis_options["port"], decode_responses=True)
    p = redis_options["index_prefix"]
    legacy = {"client_id": 4, "api_key": "k4", "skill_blacklist": ["s"], "is_admin": False}
    r.set(f"{p}:client:4", json.dumps(legacy))
    r.sadd(f"{p}:api_key:k4", 4)
    store = RedisClientStore(redis_options)
    assert store.get_by_access_key("k4").skill_blacklist == ("s",)
    stored = json.loads(r.get(f"{p}:client:4"))
    assert "skill_blacklist" not in stored
    assert stored["metadata"] == {"skill_blacklist": ["s"]}
    assert r.get(f"{p}:schema_version") == "2"
    r.close()
    store.close()


def test_redis_unreachable_is_a_store_error():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(StoreError, match="redis"):
        RedisClientStore({"host": "127.0.0.1", "port": port, "retry_attempts": 1})


def populate(store):
    a = store.create(
        api_key="key-a",
        name="a",
        description="first",
        is_admin=True,
        allowed_types=["recognizer_loop:utterance", "speak"],
        password="pw-a",
        crypto_key="0123456789abcdef",
        can_broadcast=False,
        metadata={"skill_blacklist": ["s"], "tier": "pro", "nested": {"n": [1, 2]}},
    )
    gone = store.create(api_key="key-gone")
    store.create(api_key="key-c", name="c", last_seen=1700000000.5, can_propagate=False)
    store.delete(gone.client_id)
    store.put(Client(client_id=7, api_key="revoked"))
    return a


def test_round_trip_json_sqlite_redis_json(tmp_path, redis_options):
    src = JSONClientStore(tmp_path / "src.json")
    populate(src)
    original = src.list_clients()
    sqlite_store = SQLiteClientStore(tmp_path / "mid.db")
    redis_store = RedisClientStore(redis_options)
    final = JSONClientStore(tmp_path / "dst.json")
    assert migrate_store(src, sqlite_store) == len(original)
    migrate_store(sqlite_store, redis_store)
    migrate_store(redis_store, final)
    assert final.list_clients() == original
    assert [c.to_dict() for c in final.list_clients()] == [c.to_dict() for c in original]
    # Deleted id 2 and the tombstone id 7 are never handed out again.
    assert final.create(api_key="new").client_id == 8
    # The source is untouched.
    assert src.list_clients() == original
    for s in (sqlite_store, redis_store, final, src):
        s.close()


def test_open_store_by_name_uses_data_dir(xdg):
    with open_store("sqlite") as store:
        store.create(api_key="k")
    assert store_path("sqlite", {}).exists()
    assert store_path("sqlite", {}) == xdg / "data" / "hivemind-core" / "clients.db"
    assert store_path("json", {"name": "other"}).name == "other.json"


def test_encrypted_file_databases_are_refused(xdg):
    with pytest.raises(StoreError, match="encrypted"):
        open_store("json", {"password": "x"})
    with pytest.raises(StoreError, match="encrypted"):
        open_store("sqlite", {"password": "x"})
