"""Read-only SQL over a room's allowlisted tables, enforced by the engine.

Theory of operation. Every agent statement runs on its own connection opened
with ``mode=ro`` (the file cannot be written through it) and
``PRAGMA query_only``. An SQLite authorizer then decides, for every table and
column the compiled statement reads and every function it calls, whether it
may: only ``SELECT`` and reads of allowlisted tables (compared without case)
pass; ``PRAGMA``, ``ATTACH``, writes, schema tables, internal tables and
``load_extension`` are denied. A refusal at any point answers with the same
opaque message so an agent cannot probe which tables exist. A progress
handler bounds run time and the result is capped in rows.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final

__all__ = ["REJECTED", "SqlRefused", "read_only_query", "table_schema"]

REJECTED: Final = "query rejected"
_DENIED_FUNCTIONS: Final = frozenset({"load_extension", "readfile", "writefile", "fts3_tokenizer"})


class SqlRefused(ValueError):
    """The statement was refused or failed; the message is always :data:`REJECTED`."""

    def __init__(self) -> None:
        super().__init__(REJECTED)


def _authorizer(allowed: frozenset[str]) -> Any:
    def check(action: int, arg1: str | None, arg2: str | None, db: str | None, _: Any) -> int:
        if action == sqlite3.SQLITE_SELECT:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_READ:
            # arg1 is the table; a CTE or subquery column is reported with no table.
            ok = db in (None, "main") and (not arg1 or arg1.lower() in allowed)
            return sqlite3.SQLITE_OK if ok else sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_FUNCTION:
            name = (arg2 or "").lower()
            return sqlite3.SQLITE_DENY if name in _DENIED_FUNCTIONS else sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_RECURSIVE:
            return sqlite3.SQLITE_OK
        return sqlite3.SQLITE_DENY

    return check


def _connect(path: Path, allowed: Iterable[str]) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
    conn.execute("PRAGMA query_only = ON")
    conn.set_authorizer(_authorizer(frozenset(t.lower() for t in allowed)))
    return conn


def read_only_query(
    path: Path,
    allowed: Sequence[str],
    sql: str,
    params: Sequence[Any],
    *,
    max_rows: int = 1000,
    time_limit: float = 5.0,
) -> list[dict[str, Any]]:
    """Run one SELECT over allowlisted tables.

    Args:
        path: The tenant database file.
        allowed: Tables the room allows.
        sql: One statement.
        params: Positional parameters.
        max_rows: Rows returned at most (extra rows are dropped).
        time_limit: Seconds before the statement is interrupted.

    Returns:
        Rows as dicts (bytes become hex strings).

    Raises:
        SqlRefused: anything but an allowed read, or any engine error.
    """
    if not allowed or not isinstance(sql, str) or not sql.strip():
        raise SqlRefused()
    conn = _connect(path, allowed)
    deadline = time.monotonic() + time_limit
    conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    try:
        cursor = conn.execute(sql, tuple(params))
        names = [d[0] for d in cursor.description or ()]
        rows = cursor.fetchmany(max_rows)
    except (sqlite3.Error, ValueError, TypeError, OverflowError):
        raise SqlRefused() from None
    finally:
        conn.close()
    return [
        {n: (v.hex() if isinstance(v, bytes) else v) for n, v in zip(names, r, strict=True)}
        for r in rows
    ]


def table_schema(path: Path, allowed: Sequence[str]) -> list[dict[str, Any]]:
    """List the columns of the allowlisted tables that exist (name, column, type)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
    try:
        names = {
            str(r[0]).lower(): str(r[0])
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        out: list[dict[str, Any]] = []
        for table in allowed:
            real = names.get(table.lower())
            if real is None or real.startswith(("_", "sqlite_")):
                continue
            columns = conn.execute("SELECT name, type FROM pragma_table_info(?)", (real,))
            out.extend({"table": real, "column": c[0], "type": c[1]} for c in columns)
        return out
    finally:
        conn.close()
