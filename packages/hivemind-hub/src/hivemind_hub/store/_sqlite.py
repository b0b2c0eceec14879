"""SQLite client store (``clients.db``), via sqlite-utils.

Theory of operation
-------------------
The ``clients`` table keeps the upstream column layout (spec §6.2) so a file
written here opens in the upstream hub and vice versa; list and dict columns
hold JSON text. Additions: an index on ``api_key`` (the hub looks a client up
on every message), a ``hivemind_meta`` key/value table holding the id
high-water mark, WAL journaling, and ``PRAGMA user_version`` as the schema
version. Writes run inside ``BEGIN IMMEDIATE`` so two processes cannot
allocate the same id. One connection is shared by the threads of a process,
serialised by a lock.

Migration v1 -> v2 (spec §6.4), run once when ``user_version`` < 2: add the
``metadata`` column if missing, fold the legacy ``intent_blacklist``,
``skill_blacklist`` and ``message_blacklist`` columns into ``metadata``
(entries already in metadata win), then NULL those columns (kept, so older
readers still find them).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import sqlite_utils

from .._errors import InvalidClientError, StoreError
from ..clients import LEGACY_METADATA_KEYS, Client
from ._base import SCHEMA_VERSION, BaseClientStore, file_stamp

__all__ = ["SQLiteClientStore"]

_TABLE: Final = "clients"
_META: Final = "hivemind_meta"

_CREATE_CLIENTS: Final = """
CREATE TABLE IF NOT EXISTS clients (
    client_id INTEGER PRIMARY KEY,
    api_key VARCHAR(255) NOT NULL,
    name VARCHAR(255),
    description VARCHAR(255),
    is_admin BOOLEAN DEFAULT FALSE,
    last_seen REAL DEFAULT -1,
    intent_blacklist TEXT,
    skill_blacklist TEXT,
    message_blacklist TEXT,
    allowed_types TEXT,
    crypto_key VARCHAR(16),
    password TEXT,
    can_broadcast BOOLEAN DEFAULT TRUE,
    can_escalate BOOLEAN DEFAULT TRUE,
    can_propagate BOOLEAN DEFAULT TRUE,
    metadata TEXT
)
"""


class SQLiteClientStore(BaseClientStore):
    """Client store in an SQLite file.

    Args:
        path: The database file (created if missing).
    """

    backend = "sqlite"

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._wal_path = self.path.with_name(self.path.name + "-wal")
        self._closed = False
        self._lock = threading.RLock()
        try:
            conn = sqlite3.connect(str(self.path), timeout=10.0, check_same_thread=False)
            self._db = sqlite_utils.Database(conn, execute_plugins=False)
            self._db.enable_wal()
            self._prepare()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open the client database ({exc})") from exc

    # -- schema -----------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        """The ``PRAGMA user_version`` of the file."""
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _prepare(self) -> None:
        with self._atomic():
            self._db.execute(_CREATE_CLIENTS)
            if "metadata" not in self._db.table(_TABLE).columns_dict:
                self._db.execute("ALTER TABLE clients ADD COLUMN metadata TEXT")
            self._db.execute(
                f"CREATE TABLE IF NOT EXISTS {_META} (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
            self._db.execute("CREATE INDEX IF NOT EXISTS idx_clients_api_key ON clients(api_key)")
            if self.schema_version < SCHEMA_VERSION:
                self._migrate_v1()
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _migrate_v1(self) -> None:
        legacy = ", ".join(LEGACY_METADATA_KEYS)
        rows = self._db.execute(f"SELECT client_id, metadata, {legacy} FROM clients").fetchall()
        for client_id, metadata_text, *values in rows:
            metadata = _json_or(metadata_text, {})
            if not isinstance(metadata, dict):
                metadata = {}
            for key, value in zip(LEGACY_METADATA_KEYS, values, strict=True):
                decoded = _json_or(value, None)
                if decoded not in (None, [], {}, ""):
                    metadata.setdefault(key, decoded)
            nulls = ", ".join(f"{k} = NULL" for k in LEGACY_METADATA_KEYS)
            self._db.execute(
                f"UPDATE clients SET metadata = ?, {nulls} WHERE client_id = ?",
                [json.dumps(metadata, sort_keys=True), client_id],
            )

    # -- primitives -------------------------------------------------------------

    @contextmanager
    def _atomic(self) -> Iterator[None]:
        with self._lock:
            if self._db.conn.in_transaction:
                yield
                return
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.rollback()
                raise
            self._db.execute("COMMIT")

    def _read(self, client_id: int) -> Client | None:
        with self._lock:
            rows = list(self._db.table(_TABLE).rows_where("client_id = ?", [client_id]))
        return _row_to_client(rows[0]) if rows else None

    def _write(self, client: Client, previous: Client | None) -> None:
        with self._lock:
            self._db.table(_TABLE).insert(_client_to_row(client), replace=True)

    def _remove(self, client: Client) -> None:
        with self._lock:
            self._db.execute("DELETE FROM clients WHERE client_id = ?", [client.client_id])

    def _scan(self) -> Iterator[Client]:
        with self._lock:
            rows = list(self._db.table(_TABLE).rows_where(order_by="client_id"))
        return (_row_to_client(row) for row in rows)

    def _candidates(self, access_key: str) -> list[Client]:
        with self._lock:
            rows = list(self._db.table(_TABLE).rows_where("api_key = ?", [access_key]))
        return [_row_to_client(row) for row in rows]

    def _high_water(self) -> int:
        with self._lock:
            row = self._db.execute(f"SELECT value FROM {_META} WHERE key = 'id_seq'").fetchone()
        return int(row[0]) if row else 0

    def _set_high_water(self, value: int) -> None:
        with self._lock:
            self._db.execute(
                f"INSERT OR REPLACE INTO {_META} (key, value) VALUES ('id_seq', ?)", [str(value)]
            )

    def change_stamp(self) -> Hashable | None:
        """Stats of the database file and its write-ahead log (None once closed)."""
        if self._closed:
            return None
        return file_stamp(self.path, self._wal_path)

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._closed = True
            self._db.close()


def _json_or(value: Any, default: Any) -> Any:
    if value is None:
        return default
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _row_to_client(row: dict[str, Any]) -> Client:
    data = {k: v for k, v in row.items() if v is not None or k == "metadata"}
    try:
        return Client.from_dict(data)
    except InvalidClientError as exc:
        raise StoreError(f"clients row {row.get('client_id')!r}: {exc}") from exc


def _client_to_row(client: Client) -> dict[str, Any]:
    row = client.to_dict()
    row["allowed_types"] = json.dumps(row["allowed_types"])
    row["metadata"] = json.dumps(row["metadata"], sort_keys=True, ensure_ascii=False)
    for key in LEGACY_METADATA_KEYS:
        row[key] = None
    return row
