"""One tenant's database: agents and their files, rooms, key wraps, vault items, runs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, final

from ._db import SqliteFile
from ._schema import TENANT_MIGRATIONS

__all__ = ["TenantStore"]

Row = dict[str, Any]

_INTERNAL_PREFIXES = ("_hivemind_", "_schema_", "sqlite_")


def _insert(db: Any, table: str, row: Row) -> None:
    cols = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    db.execute(f"INSERT INTO {table} ({cols}) VALUES ({marks})", tuple(row.values()))


@final
class TenantStore:
    """Typed access to ``tenants/<tenant_id>.sqlite3``.

    Args:
        path: The tenant database file.
    """

    def __init__(self, path: Path) -> None:
        self.file = SqliteFile(path, TENANT_MIGRATIONS)

    def close(self) -> None:
        """Close the underlying file."""
        self.file.close()

    # -- agents ------------------------------------------------------------------

    def insert_agent(self, agent: Row, files: Sequence[Row]) -> None:
        """Store an agent and all its files in one transaction."""
        with self.file.transaction() as db:
            _insert(db, "_hivemind_agents", agent)
            for row in files:
                _insert(db, "_hivemind_agent_files", {"agent_id": agent["agent_id"], **row})

    def get_agent(self, agent_id: str) -> Row | None:
        """Return an agent row or None."""
        return self.file.one("SELECT * FROM _hivemind_agents WHERE agent_id = ?", (agent_id,))

    def list_agents(self, agent_type: str | None = None) -> list[Row]:
        """Return agents newest first, optionally of one type."""
        if agent_type:
            return self.file.query(
                "SELECT * FROM _hivemind_agents WHERE agent_type = ? "
                "ORDER BY created_at DESC, agent_id",
                (agent_type,),
            )
        return self.file.query("SELECT * FROM _hivemind_agents ORDER BY created_at DESC, agent_id")

    def delete_agent(self, agent_id: str) -> bool:
        """Delete an agent and its files; False if unknown."""
        return (
            self.file.execute("DELETE FROM _hivemind_agents WHERE agent_id = ?", (agent_id,)) == 1
        )

    def agent_files(self, agent_id: str) -> list[Row]:
        """Return file metadata (no content) ordered by path."""
        return self.file.query(
            "SELECT file_path, size_bytes, attestable, seal_mode, mode "
            "FROM _hivemind_agent_files WHERE agent_id = ? ORDER BY file_path",
            (agent_id,),
        )

    def agent_file(self, agent_id: str, path: str) -> Row | None:
        """Return one stored file row (content or ciphertext) or None."""
        return self.file.one(
            "SELECT * FROM _hivemind_agent_files WHERE agent_id = ? AND file_path = ?",
            (agent_id, path),
        )

    # -- tenant seal -------------------------------------------------------------

    def get_tenant_kek(self) -> Row | None:
        """Return the tenant-seal wrap row or None."""
        return self.file.one("SELECT * FROM _hivemind_tenant_kek WHERE singleton = 1")

    def put_tenant_kek(self, wrapped: str, key_check: str, now: float) -> bool:
        """Insert the tenant-seal wrap row unless one exists; True if inserted."""
        return (
            self.file.execute(
                "INSERT INTO _hivemind_tenant_kek (singleton, wrapped, key_check, created_at) "
                "VALUES (1, ?, ?, ?) ON CONFLICT (singleton) DO NOTHING",
                (wrapped, key_check, now),
            )
            == 1
        )

    def replace_owner_wraps(self, tenant_wrap: str | None, room_wraps: Row, now: float) -> None:
        """Replace the tenant-seal wrap and the rooms' owner wraps in one transaction."""
        with self.file.transaction() as db:
            if tenant_wrap is not None:
                db.execute("UPDATE _hivemind_tenant_kek SET wrapped = ?", (tenant_wrap,))
            for room_id, wrapped in room_wraps.items():
                db.execute(
                    "UPDATE _hivemind_room_key_wraps SET wrapped = ?, created_at = ? "
                    "WHERE room_id = ? AND wrap_id = 'owner'",
                    (wrapped, now, room_id),
                )

    def delete_tenant_kek(self) -> int:
        """Delete the tenant-seal wrap row; return rows deleted."""
        return self.file.execute("DELETE FROM _hivemind_tenant_kek")

    # -- rooms -------------------------------------------------------------------

    def insert_room(self, room: Row, wraps: Sequence[tuple[str, str]], now: float) -> None:
        """Store a room row and its initial key wraps in one transaction."""
        with self.file.transaction() as db:
            _insert(db, "_hivemind_rooms", room)
            for wrap_id, wrapped in wraps:
                _insert(
                    db,
                    "_hivemind_room_key_wraps",
                    {
                        "room_id": room["room_id"],
                        "wrap_id": wrap_id,
                        "wrapped": wrapped,
                        "created_at": now,
                    },
                )

    def get_room(self, room_id: str) -> Row | None:
        """Return a room row or None."""
        return self.file.one("SELECT * FROM _hivemind_rooms WHERE room_id = ?", (room_id,))

    def list_rooms(self, limit: int) -> list[Row]:
        """Return rooms newest first."""
        return self.file.query(
            "SELECT * FROM _hivemind_rooms ORDER BY created_at DESC, room_id LIMIT ?", (limit,)
        )

    def update_room(self, room_id: str, fields: Row) -> bool:
        """Update columns of a room row; False if unknown."""
        sets = ", ".join(f"{k} = ?" for k in fields)
        return (
            self.file.execute(
                f"UPDATE _hivemind_rooms SET {sets} WHERE room_id = ?",
                (*fields.values(), room_id),
            )
            == 1
        )

    def revoke_room(self, room_id: str, now: float) -> bool:
        """Mark a live room revoked and delete every wrap of its key, in one transaction.

        Revocation is final: without a wrap nothing sealed under the room key
        (vault items, run fields, artifacts) can be opened again, even with a
        copy of this file and a credential. The room row (metadata, key check
        value) and the run rows (billing) stay.

        Returns:
            False if the room is unknown or already revoked (nothing changes).
        """
        with self.file.transaction() as db:
            revoked = db.execute(
                "UPDATE _hivemind_rooms SET revoked_at = ? WHERE room_id = ? "
                "AND revoked_at IS NULL",
                (now, room_id),
            ).rowcount
            if revoked != 1:
                return False
            db.execute("DELETE FROM _hivemind_room_key_wraps WHERE room_id = ?", (room_id,))
        self.file.checkpoint()
        return True

    # -- room key wraps ----------------------------------------------------------

    def put_wrap(self, room_id: str, wrap_id: str, wrapped: str, now: float) -> None:
        """Insert or replace one key wrap of a room."""
        self.file.execute(
            "INSERT INTO _hivemind_room_key_wraps (room_id, wrap_id, wrapped, created_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (room_id, wrap_id) DO UPDATE SET "
            "wrapped = excluded.wrapped, created_at = excluded.created_at",
            (room_id, wrap_id, wrapped, now),
        )

    def get_wrap(self, room_id: str, wrap_id: str) -> str | None:
        """Return one wrap's stored text or None."""
        row = self.file.one(
            "SELECT wrapped FROM _hivemind_room_key_wraps WHERE room_id = ? AND wrap_id = ?",
            (room_id, wrap_id),
        )
        return str(row["wrapped"]) if row else None

    def delete_wrap(self, room_id: str, wrap_id: str) -> bool:
        """Delete one wrap of a room; False if absent."""
        return (
            self.file.execute(
                "DELETE FROM _hivemind_room_key_wraps WHERE room_id = ? AND wrap_id = ?",
                (room_id, wrap_id),
            )
            == 1
        )

    def wrap_ids(self, room_id: str) -> list[str]:
        """Return the wrap ids of a room."""
        rows = self.file.query(
            "SELECT wrap_id FROM _hivemind_room_key_wraps WHERE room_id = ? ORDER BY wrap_id",
            (room_id,),
        )
        return [str(r["wrap_id"]) for r in rows]

    def rooms_with_wrap(self, wrap_id: str) -> list[str]:
        """Return the room ids that hold a wrap with this id."""
        rows = self.file.query(
            "SELECT room_id FROM _hivemind_room_key_wraps WHERE wrap_id = ?", (wrap_id,)
        )
        return [str(r["room_id"]) for r in rows]

    # -- vault items ---------------------------------------------------------------

    def insert_item(self, row: Row) -> None:
        """Store one sealed vault item."""
        with self.file.transaction() as db:
            _insert(db, "_hivemind_room_vault_items", row)

    def list_items(self, room_id: str) -> list[Row]:
        """Return a room's sealed items in creation order."""
        return self.file.query(
            "SELECT * FROM _hivemind_room_vault_items WHERE room_id = ? "
            "ORDER BY created_at, item_id",
            (room_id,),
        )

    def count_items(self, room_id: str) -> int:
        """Return the number of vault items of a room."""
        row = self.file.one(
            "SELECT COUNT(*) AS n FROM _hivemind_room_vault_items WHERE room_id = ?", (room_id,)
        )
        return int(row["n"]) if row else 0

    # -- runs ------------------------------------------------------------------------

    def insert_run(self, row: Row) -> None:
        """Store a run row."""
        with self.file.transaction() as db:
            _insert(db, "_hivemind_query_runs", row)

    def get_run(self, run_id: str) -> Row | None:
        """Return a run row or None."""
        return self.file.one("SELECT * FROM _hivemind_query_runs WHERE run_id = ?", (run_id,))

    def list_runs(self, limit: int, *, issuer_token_id: str | None = None) -> list[Row]:
        """Return runs newest first, optionally only those of one invite token."""
        if issuer_token_id is None:
            return self.file.query(
                "SELECT * FROM _hivemind_query_runs ORDER BY created_at DESC LIMIT ?", (limit,)
            )
        return self.file.query(
            "SELECT * FROM _hivemind_query_runs WHERE issuer_token_id = ? "
            "ORDER BY created_at DESC LIMIT ?",
            (issuer_token_id, limit),
        )

    # -- user tables -----------------------------------------------------------------

    def user_tables(self) -> list[str]:
        """Return the names of the owner's own tables (internal ones hidden)."""
        rows = self.file.query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        return [str(r["name"]) for r in rows if not str(r["name"]).startswith(_INTERNAL_PREFIXES)]

    def table_columns(self, table: str) -> list[Row]:
        """Return ``PRAGMA table_info`` rows of a user table."""
        if table not in self.user_tables():
            return []
        return self.file.query("SELECT * FROM pragma_table_info(?)", (table,))


def dumps(value: Any) -> str:
    """Serialize a JSON column value (sorted keys, compact)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
