"""SQL an owner runs on their own tables (``POST /v1/tenant/sql``).

Theory of operation. The statement runs on a separate, short-lived
connection to the tenant file with an SQLite *authorizer*: the engine itself
asks, for every table, column, function and pragma the statement touches,
whether it is allowed. Anything naming an internal table (``_hivemind_*``,
``_schema_*``, ``sqlite_*``), ``ATTACH``/``DETACH``, ``PRAGMA`` and
``load_extension`` is denied, so no spelling trick reaches the service's own
data. One statement per call; a progress handler bounds the run time and the
result is capped in rows.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["OwnerSqlError", "run_owner_sql"]

_INTERNAL = ("_hivemind_", "_schema_", "sqlite_")
_MAX_ROWS = 10_000
_TIME_LIMIT = 10.0
_DENIED_ACTIONS = frozenset(
    {
        sqlite3.SQLITE_ATTACH,
        sqlite3.SQLITE_DETACH,
        sqlite3.SQLITE_PRAGMA,
        sqlite3.SQLITE_CREATE_VTABLE,
        sqlite3.SQLITE_DROP_VTABLE,
        # Triggers and views run later under someone else's authority: not offered.
        sqlite3.SQLITE_CREATE_TRIGGER,
        sqlite3.SQLITE_CREATE_TEMP_TRIGGER,
        sqlite3.SQLITE_CREATE_VIEW,
        sqlite3.SQLITE_CREATE_TEMP_VIEW,
    }
)


class OwnerSqlError(ValueError):
    """The statement is refused or failed; the message is safe to show."""


_SCHEMA_TABLES = frozenset({"sqlite_master", "sqlite_temp_master", "sqlite_sequence"})
_NAMED_BY_ARG2 = frozenset(
    {
        sqlite3.SQLITE_CREATE_INDEX,
        sqlite3.SQLITE_DROP_INDEX,
        sqlite3.SQLITE_CREATE_TRIGGER,
        sqlite3.SQLITE_DROP_TRIGGER,
        sqlite3.SQLITE_ALTER_TABLE,
    }
)
_DDL_WORDS = ("create", "drop", "alter")


def _internal(name: str | None) -> bool:
    return bool(name) and str(name).lower().startswith(_INTERNAL)


def _authorizer(first_word: str) -> Any:
    """Build the authorizer for a statement starting with ``first_word``.

    DDL may write the schema tables. ``ALTER`` and ``DROP`` (which cannot embed
    a query) may also read them; ``CREATE`` (which can, ``CREATE TABLE AS``)
    only reads their ROWID.
    """
    ddl = first_word in _DDL_WORDS
    reads_schema = first_word in ("alter", "drop")

    def check(action: int, arg1: str | None, arg2: str | None, db: str | None, _: Any) -> int:
        if action in _DENIED_ACTIONS or db not in (None, "main", "temp"):
            return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() == "load_extension":
            return sqlite3.SQLITE_DENY
        if (arg1 or "").lower() in _SCHEMA_TABLES:
            # DDL records itself in the schema tables (SQLite itself refuses direct
            # writes and drops) and reads only their ROWID; nothing else may read them.
            reading = action == sqlite3.SQLITE_READ
            allowed = ddl and (not reading or reads_schema or (arg2 or "").lower() == "rowid")
            return sqlite3.SQLITE_OK if allowed else sqlite3.SQLITE_DENY
        if _internal(arg1) or (action in _NAMED_BY_ARG2 and _internal(arg2)):
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK

    return check


def _names(conn: sqlite3.Connection) -> set[str]:
    return {str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master")}


def run_owner_sql(path: Path, sql: str, params: Sequence[Any]) -> dict[str, Any]:
    """Run one owner statement on the tenant file.

    Args:
        path: The tenant database file.
        sql: One SQL statement.
        params: Positional parameters.

    Returns:
        ``{"rows": [...], "rowcount": n}``.

    Raises:
        OwnerSqlError: refused, malformed, too slow or too large.
    """
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=10.0)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        first = sql.lstrip().split(None, 1)[0].lower() if sql.strip() else ""
        deadline = time.monotonic() + _TIME_LIMIT
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        conn.execute("BEGIN")  # deferred: a read never takes the write lock
        try:
            conn.set_authorizer(None)
            before = _names(conn)
            conn.set_authorizer(_authorizer(first))
            cursor = conn.execute(sql, tuple(params))
            rows = cursor.fetchmany(_MAX_ROWS + 1)
            if len(rows) > _MAX_ROWS:
                raise OwnerSqlError(f"result exceeds {_MAX_ROWS} rows")
            names = [d[0] for d in cursor.description or ()]
            result = {
                "rows": [dict(zip(names, r, strict=True)) for r in rows],
                "rowcount": cursor.rowcount if not names else len(rows),
            }
            conn.set_authorizer(None)
            if any(_internal(n) for n in _names(conn) - before - _SCHEMA_TABLES):
                raise OwnerSqlError("names starting with '_hivemind_' or 'sqlite_' are reserved")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result
    except sqlite3.Error as exc:
        raise OwnerSqlError(f"statement refused or failed: {exc}") from None
    finally:
        conn.close()
