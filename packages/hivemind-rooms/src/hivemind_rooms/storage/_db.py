"""One SQLite file: connection setup, transactions and schema migrations.

Theory of operation. Each database file is opened once per process with
autocommit semantics (``isolation_level=None``) so that transactions are
explicit. Reads and single writes run under a per-file lock; multi-statement
writes go through :meth:`SqliteFile.transaction`. Money and redemption paths
ask for ``BEGIN IMMEDIATE``, which takes SQLite's write lock before the first
read, so a check ("is the balance high enough?", "are uses left?") and the
write that depends on it cannot interleave with another connection's, even in
another process. WAL mode lets readers proceed while one writer holds the lock;
``busy_timeout`` makes a second writer wait instead of failing at once.

The schema version lives in ``PRAGMA user_version``; each applied migration
is also recorded in ``_schema_migrations`` with its time, so an operator can
see the history. Migrations run inside one ``BEGIN IMMEDIATE`` transaction,
which makes concurrent first starts safe.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, final

from sqlite_utils import Database

__all__ = ["SqliteFile", "StorageError"]

_BUSY_TIMEOUT_MS = 10_000


class StorageError(RuntimeError):
    """The database is unusable (newer schema, corrupted file, closed store)."""


@final
class SqliteFile:
    """A SQLite database file with explicit transactions and migrations.

    Args:
        path: The database file; parent directories are created.
        migrations: SQL scripts; script ``i`` brings the schema to version ``i + 1``.
    """

    def __init__(self, path: Path, migrations: Sequence[str]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        conn = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False, timeout=10.0
        )
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")
        # Deleted rows (destroyed key wraps) are overwritten, not left in free pages.
        conn.execute("PRAGMA secure_delete = ON")
        self._conn = conn
        self._db = Database(conn, execute_plugins=False)
        self._lock = threading.RLock()
        self._closed = False
        self._migrate(migrations)

    def _migrate(self, migrations: Sequence[str]) -> None:
        with self.transaction() as db:
            current = db.execute("PRAGMA user_version").fetchone()[0]
            if current > len(migrations):
                raise StorageError(
                    f"{self.path.name} has schema version {current}, newer than this "
                    f"software ({len(migrations)})"
                )
            db.execute(
                "CREATE TABLE IF NOT EXISTS _schema_migrations "
                "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
            )
            for version in range(current + 1, len(migrations) + 1):
                for statement in _statements(migrations[version - 1]):
                    db.execute(statement)
                db.execute(
                    "INSERT INTO _schema_migrations (version, applied_at) VALUES (?, ?)",
                    (version, time.time()),
                )
                db.execute(f"PRAGMA user_version = {version}")

    @property
    def schema_version(self) -> int:
        """The applied schema version."""
        with self._lock:
            return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    @contextlib.contextmanager
    def transaction(self, *, immediate: bool = True) -> Iterator[Database]:
        """Run a block in one transaction; commit on success, roll back on error.

        Args:
            immediate: Take the write lock up front (``BEGIN IMMEDIATE``).

        Yields:
            The sqlite-utils database bound to the transaction.
        """
        with self._lock:
            self._check_open()
            self._conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            try:
                yield self._db
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run a read and return every row as a dict.

        Args:
            sql: One SELECT statement with ``?`` placeholders.
            params: Values for the placeholders.

        Returns:
            The rows.
        """
        with self._lock:
            self._check_open()
            return list(self._db.query(sql, params))

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        """Run a read and return its first row, or None.

        Args:
            sql: One SELECT statement.
            params: Values for the placeholders.

        Returns:
            The first row or None.
        """
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one write statement in its own transaction.

        Args:
            sql: One statement.
            params: Values for the placeholders.

        Returns:
            The number of rows changed.
        """
        with self.transaction() as db:
            return db.execute(sql, params).rowcount

    def checkpoint(self) -> bool:
        """Copy the write-ahead log into the file and truncate the log.

        Used after destroying secrets, so that their old pages do not linger
        in the ``-wal`` file. Another connection reading at the same moment
        can keep the log from being emptied.

        Returns:
            True when the log was fully copied and truncated.
        """
        with self._lock:
            self._check_open()
            busy, _, _ = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            return int(busy) == 0

    def close(self) -> None:
        """Close the connection; later calls raise :class:`StorageError`."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError(f"{self.path.name} is closed")


def _statements(script: str) -> list[str]:
    """Split a script into statements (trigger bodies keep their inner ``;``)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements
