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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, final

import trio

from ..scope import ScopeLimits, apply_scope
from ._sql import REJECTED, SqlRefused, read_only_query, table_schema

__all__ = ["TOOL_DEFINITIONS", "DataTools", "QueryAgentSource", "ToolError"]

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
_LIST_FILES_TOOL: Final = {
    "name": "list_query_agent_files",
    "description": "List the files of the query agent this scope function will guard.",
    "parameters": {"type": "object", "properties": {}},
}
_READ_FILE_TOOL: Final = {
    "name": "read_query_agent_file",
    "description": "Read one file of the query agent (not available for sealed agents).",
    "parameters": {
        "type": "object",
        "properties": {"path": {"type": "string"}},
        "required": ["path"],
    },
}
TOOL_DEFINITIONS: Final = {
    t["name"]: t for t in (_SQL_TOOL, _SCHEMA_TOOL, _VAULT_TOOL, _LIST_FILES_TOOL, _READ_FILE_TOOL)
}
_MAX_FILE_CHARS: Final = 256 * 1024


@final
@dataclasses.dataclass(frozen=True)
class QueryAgentSource:
    """The bound query agent's files, for the scope stage.

    Attributes:
        paths: Every file path (also for sealed agents).
        read: Returns one file's bytes; None when the agent is sealed.
    """

    paths: Sequence[str]
    read: Callable[[str], bytes] | None = dataclasses.field(default=None, repr=False)


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
        query_agent: The bound query agent's files (scope stage only).
        calls: Tool name to number of calls (telemetry).
    """

    db_path: Path
    allowed_tables: Sequence[str]
    vault_items: Sequence[Mapping[str, Any]] = dataclasses.field(default=(), repr=False)
    scope_source: str | None = dataclasses.field(default=None, repr=False)
    scope_limits: ScopeLimits = dataclasses.field(default_factory=ScopeLimits)
    query_agent: QueryAgentSource | None = None
    calls: dict[str, int] = dataclasses.field(default_factory=dict)

    def definitions(self) -> list[dict[str, Any]]:
        """OpenAI function definitions of the offered tools."""
        names = ["execute_sql", "get_schema"]
        if self.vault_items:
            names.append("get_room_vault_items")
        if self.query_agent is not None and self.scope_source is None:
            names += ["list_query_agent_files", "read_query_agent_file"]
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
        if name in ("list_query_agent_files", "read_query_agent_file"):
            return await self._agent_file(name, arguments)
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

    async def _agent_file(self, name: str, arguments: Mapping[str, Any]) -> Any:
        source = self.query_agent
        assert source is not None
        if name == "list_query_agent_files":
            return {"files": list(source.paths), "sealed": source.read is None}
        path = arguments.get("path")
        if source.read is None:
            raise ToolError("the query agent is sealed: its source cannot be read")
        if not isinstance(path, str) or path not in source.paths:
            raise ToolError("no such file in the query agent")
        data = await trio.to_thread.run_sync(source.read, path)
        text = data.decode("utf-8", "replace")
        return {
            "path": path,
            "content": text[:_MAX_FILE_CHARS],
            "truncated": len(text) > _MAX_FILE_CHARS,
        }

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
