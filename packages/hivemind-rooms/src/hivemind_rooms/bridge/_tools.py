"""The data tools a stage may call, at full read or scoped by the scope function.

``execute_sql``, ``get_schema`` and ``get_room_vault_items`` read the room's
data. In the scope stage they return it as is (FULL_READ); in the query stage
every result first passes through the room's scope function (SCOPED), which
runs in its own locked-down process and may transform or deny it. The
mediator gets no tools. For the non-SQL tools the scope function receives a
pseudo statement (``-- get_schema`` or ``-- get_room_vault_items``) so it can
tell the sources apart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final, final

import trio

from ..scope import ScopeLimits, apply_scope
from ._sql import REJECTED, SqlRefused, read_only_query, table_schema

__all__ = ["TOOL_DEFINITIONS", "DataTools", "ToolError"]

_SQL_TOOL: Final = {
    "name": "execute_sql",
    "description": "Run one read-only SQL SELECT over the room's tables.",
    "parameters": {
        "type": "object",
        "properties": {
            "sql": {"type": "string"},
            "params": {"type": "array", "items": {}},
        },
        "required": ["sql"],
    },
}
_SCHEMA_TOOL: Final = {
    "name": "get_schema",
    "description": "List the tables and columns this room allows.",
    "parameters": {"type": "object", "properties": {}},
}
_VAULT_TOOL: Final = {
    "name": "get_room_vault_items",
    "description": "Return the room's private text items.",
    "parameters": {"type": "object", "properties": {}},
}
TOOL_DEFINITIONS: Final = {t["name"]: t for t in (_SQL_TOOL, _SCHEMA_TOOL, _VAULT_TOOL)}


class ToolError(Exception):
    """A tool call failed; the message goes back to the agent."""


@final
@dataclasses.dataclass
class DataTools:
    """Room data as seen by one stage.

    Attributes:
        db_path: The tenant database file.
        allowed_tables: The manifest's table allowlist.
        vault_items: Opened room vault items (``item_id``, ``text``, ``metadata``).
        scope_source: The scope function for SCOPED access, None for FULL_READ.
        scope_limits: Bounds of each scope-function call.
        calls: Tool name to number of calls (telemetry).
    """

    db_path: Path
    allowed_tables: Sequence[str]
    vault_items: Sequence[Mapping[str, Any]] = dataclasses.field(default=(), repr=False)
    scope_source: str | None = dataclasses.field(default=None, repr=False)
    scope_limits: ScopeLimits = dataclasses.field(default_factory=ScopeLimits)
    calls: dict[str, int] = dataclasses.field(default_factory=dict)

    def definitions(self) -> list[dict[str, Any]]:
        """OpenAI function definitions of the offered tools."""
        names = ["execute_sql", "get_schema"]
        if self.vault_items:
            names.append("get_room_vault_items")
        return [{"type": "function", "function": TOOL_DEFINITIONS[n]} for n in names]

    async def call(self, name: str, arguments: Mapping[str, Any]) -> Any:
        """Run one tool and return its (possibly scoped) result.

        Raises:
            ToolError: unknown tool, bad arguments, refused SQL or a scope deny.
        """
        offered = {d["function"]["name"] for d in self.definitions()}
        if name not in offered:
            raise ToolError(f"unknown tool {name!r}; available: {sorted(offered)}")
        self.calls[name] = self.calls.get(name, 0) + 1
        if name == "execute_sql":
            sql, params = _sql_arguments(arguments)
            rows = await self._sql(sql, params)
        elif name == "get_schema":
            sql, params = "-- get_schema", []
            rows = await trio.to_thread.run_sync(table_schema, self.db_path, self.allowed_tables)
        else:
            sql, params = "-- get_room_vault_items", []
            rows = [dict(item) for item in self.vault_items]
        return await self._scoped(sql, params, rows)

    async def _sql(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        try:
            return await trio.to_thread.run_sync(
                read_only_query, self.db_path, self.allowed_tables, sql, params
            )
        except SqlRefused:
            raise ToolError(REJECTED) from None

    async def _scoped(self, sql: str, params: list[Any], rows: list[dict[str, Any]]) -> Any:
        if self.scope_source is None:
            return {"rows": rows}
        decision = await apply_scope(self.scope_source, sql, params, rows, limits=self.scope_limits)
        if not decision.allow:
            raise ToolError(decision.error)
        return {"rows": decision.rows}


def _sql_arguments(arguments: Mapping[str, Any]) -> tuple[str, list[Any]]:
    sql = arguments.get("sql")
    params = arguments.get("params", [])
    if not isinstance(sql, str) or len(sql) > 20_000:
        raise ToolError("execute_sql needs a 'sql' string")
    if not isinstance(params, list) or len(params) > 100:
        raise ToolError("'params' must be a list")
    if not all(p is None or isinstance(p, str | int | float) for p in params):
        raise ToolError("'params' may hold only strings, numbers and null")
    return sql, params
