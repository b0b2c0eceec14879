"""Each connection keeps its client record while the store is unchanged.

Reading the store costs a worker thread per message; the record is reused
only while the store's change stamp (file stats) and the hub's in-process
change generation are both unchanged.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import trio
from hivemind_hub.store import JSONClientStore, SQLiteClientStore
from hivemind_proto import HiveMessage, MessageType, bus_message
from hivemind_proto.trio import SatelliteIdentity, open_hive

from .hubkit import PASSWORD, UTT, running_hub, wait_for
from .test_serve import RecordingAgent

KEY = "cache0123456789abcdef0123456789a"


def age_files(db: Path, seconds: float) -> None:
    """Set the database files' mtimes ``seconds`` in the past (as if written then)."""
    when = time.time() - seconds
    for path in (db, db.with_name(db.name + "-wal")):
        if path.exists():
            os.utime(path, (when, when))


def custom() -> HiveMessage:
    return HiveMessage(MessageType.BUS, bus_message("custom.type", {}, {}))


def test_sqlite_stamp_moves_on_another_connections_write(tmp_path) -> None:
    db = tmp_path / "clients.db"
    store = SQLiteClientStore(db)
    other = SQLiteClientStore(db)
    try:
        rec = store.create(api_key=KEY, name="one", password=PASSWORD)
        assert store.change_stamp() is None  # written just now: not trusted yet
        age_files(db, 10)
        stamp = store.change_stamp()
        assert stamp is not None
        assert store.change_stamp() == stamp
        other.update(rec.client_id, allowed_types=["x"])
        age_files(db, 5)
        assert store.change_stamp() not in (None, stamp)
    finally:
        other.close()
        store.close()
    assert store.change_stamp() is None


def test_json_stamp_moves_on_write(tmp_path) -> None:
    path = tmp_path / "clients.json"
    store = JSONClientStore(path)
    rec = store.create(api_key=KEY, name="one", password=PASSWORD)
    when = time.time() - 10
    os.utime(path, (when, when))
    stamp = store.change_stamp()
    assert stamp is not None
    JSONClientStore(path).update(rec.client_id, allowed_types=["x"])
    os.utime(path, (when + 1, when + 1))
    assert store.change_stamp() not in (None, stamp)


async def test_record_reused_until_another_process_writes(tmp_path) -> None:
    agent = RecordingAgent()
    db = tmp_path / "clients.db"
    with trio.fail_after(30):
        async with running_hub(tmp_path, agent=agent) as serving:
            store = serving.hub.store
            store.create(api_key=KEY, name="one", password=PASSWORD, allowed_types=[UTT])
            reads: list[str] = []
            real = store.get_by_access_key

            def counted(key: str):
                reads.append(key)
                return real(key)

            store.get_by_access_key = counted
            other = SQLiteClientStore(db)  # as the CLI would
            try:
                ident = SatelliteIdentity(access_key=KEY, password=PASSWORD, session_id="s1")
                async with open_hive(f"ws://127.0.0.1:{serving.port}", ident) as sat:
                    await sat.send(custom())  # the first message also records last_seen
                    denied = await sat.receive(timeout=5)
                    assert denied.payload["type"] == "hive.policy.denied"
                    await wait_for(lambda: real(KEY).last_seen > 0)
                    age_files(db, 10)
                    before = len(reads)
                    for _ in range(3):
                        await sat.send(custom())
                        denied = await sat.receive(timeout=5)
                        assert denied.payload["type"] == "hive.policy.denied"
                    # Three messages with an unchanged store cost one read, not three.
                    assert len(reads) == before + 1
                    # Another process grants the type; its write moves the stamp.
                    client = other.get_by_access_key(KEY)
                    other.update(client.client_id, allowed_types=[UTT, "custom.type"])
                    age_files(db, 5)
                    await sat.send(custom())
                    await wait_for(lambda: agent.of_type("custom.type"))
                    # An in-process change bumps the generation: read again.
                    store.update(client.client_id, allowed_types=[UTT])
                    age_files(db, 3)
                    await sat.send(custom())
                    denied = await sat.receive(timeout=5)
                    assert denied.payload["type"] == "hive.policy.denied"
                    assert len(agent.of_type("custom.type")) == 1
            finally:
                other.close()
