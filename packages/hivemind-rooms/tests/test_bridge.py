"""The per-run bridge: read-only SQL, scoped tools, the LLM proxy and the socket protocol."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import trio
from hivemind_rooms.bridge import (
    REJECTED,
    Bridge,
    Budget,
    DataTools,
    LlmProxy,
    LlmRefused,
    SqlRefused,
    ToolError,
    read_only_query,
    serve_bridge,
    table_schema,
)

_spec = importlib.util.spec_from_file_location(
    "test_pipeline_support", Path(__file__).with_name("test_pipeline_support.py")
)
rs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rs)
sdk = rs._load("hivemind_agent", rs.AGENTS / "sdk" / "hivemind_agent.py")

SCOPE = """
def scope(sql, params, rows):
    out = []
    for row in rows:
        kept = {}
        for key in row:
            if key != "email":
                kept[key] = row[key]
        out.append(kept)
    return {"allow": True, "rows": out}
"""


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "tenant.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE people (name TEXT, email TEXT, city TEXT);"
        "INSERT INTO people VALUES ('Ann', 'ann@x.org', 'Lisbon'), ('Bob', 'bob@x.org', 'Porto');"
        "CREATE TABLE secrets (v TEXT); INSERT INTO secrets VALUES ('CANARY-S');"
        "CREATE TABLE _hivemind_rooms (room_id TEXT); INSERT INTO _hivemind_rooms VALUES ('r');"
    )
    conn.commit()
    conn.close()
    return path


def test_allowed_reads(db: Path) -> None:
    rows = read_only_query(db, ["People"], "SELECT name FROM people WHERE city = ?", ["Porto"])
    assert rows == [{"name": "Bob"}]
    rows = read_only_query(
        db, ["people"], "WITH c AS (SELECT city FROM people) SELECT count(*) AS n FROM c", []
    )
    assert rows == [{"n": 2}]
    assert {r["table"] for r in table_schema(db, ["people", "nosuch"])} == {"people"}


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM secrets",
        "SELECT * FROM people, secrets",
        "SELECT (SELECT v FROM secrets) AS x FROM people",
        "SELECT * FROM _hivemind_rooms",
        "SELECT name FROM sqlite_master",
        "SELECT * FROM pragma_table_info('secrets')",
        "PRAGMA table_info(secrets)",
        "INSERT INTO people VALUES ('x', 'y', 'z')",
        "UPDATE people SET city = 'x'",
        "DELETE FROM people",
        "WITH d AS (DELETE FROM people RETURNING *) SELECT * FROM d",
        "CREATE TABLE t (x)",
        "DROP TABLE people",
        "ATTACH DATABASE '/tmp/x.db' AS x",
        "SELECT load_extension('x')",
        "SELECT 1; SELECT 2",
        "not sql",
        "",
    ],
)
def test_refused_statements_are_opaque(db: Path, sql: str) -> None:
    with pytest.raises(SqlRefused) as info:
        read_only_query(db, ["people"], sql, [])
    assert str(info.value) == REJECTED
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM people").fetchone()[0] == 2
    conn.close()


def test_runaway_query_is_interrupted(db: Path) -> None:
    endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT max(i) FROM n"
    with pytest.raises(SqlRefused):
        read_only_query(db, ["people"], endless, [], time_limit=0.2)


async def test_scoped_tools_filter_every_source(db: Path) -> None:
    items = [{"item_id": "i1", "text": "note", "metadata": {}, "email": "hidden@x.org"}]
    tools = DataTools(db, ["people"], vault_items=items, scope_source=SCOPE)
    result = await tools.call("execute_sql", {"sql": "SELECT * FROM people"})
    assert result["rows"] == [{"name": "Ann", "city": "Lisbon"}, {"name": "Bob", "city": "Porto"}]
    vault = await tools.call("get_room_vault_items", {})
    assert "email" not in vault["rows"][0]
    with pytest.raises(ToolError, match=REJECTED):
        await tools.call("execute_sql", {"sql": "SELECT * FROM secrets"})
    with pytest.raises(ToolError, match="unknown tool"):
        await tools.call("drop_everything", {})
    assert tools.calls == {"execute_sql": 2, "get_room_vault_items": 1}
    full = DataTools(db, ["people"])
    assert (await full.call("execute_sql", {"sql": "SELECT email FROM people"}))["rows"][0] == {
        "email": "ann@x.org"
    }


class Double:
    """Test double of the upstream provider (records what reached it)."""

    def __init__(self, usage: tuple[int, int] = (10, 5)) -> None:
        self.seen: list[dict[str, Any]] = []
        self.usage = usage

    async def chat(self, *, provider: str, model: str, request: Any) -> dict[str, Any]:
        self.seen.append({"provider": provider, "model": model, **request})
        return {
            "model": "something-else",
            "choices": [{"message": {"role": "assistant", "content": "hi"}}],
            "usage": {"prompt_tokens": self.usage[0], "completion_tokens": self.usage[1]},
        }


async def test_proxy_pins_model_and_strips_unknown_parameters() -> None:
    double = Double()
    proxy = LlmProxy(double, provider="openrouter", model="pinned/m", budget=Budget(10_000, 5))
    body = {
        "model": "evil/override",
        "messages": [{"role": "user", "content": "hello"}],
        "extra_body": {"provider": {"order": ["x"]}, "model": "evil"},
        "provider": "tinfoil",
        "temperature": 0.2,
        "max_tokens": 50,
    }
    reply = await proxy.complete(body)
    assert reply["model"] == "pinned/m"
    sent = double.seen[0]
    assert sent["model"] == "pinned/m"
    assert sent["provider"] == "openrouter"
    assert set(sent) == {"provider", "model", "messages", "temperature", "max_tokens"}
    assert proxy.budget.to_dict()["total_tokens"] == 15
    assert len(proxy.tape) == 1
    assert proxy.tape[0]["request"]["max_tokens"] == 50


async def test_proxy_budget_and_egress() -> None:
    off = LlmProxy(None, provider="", model="", budget=Budget(100, 1))
    with pytest.raises(LlmRefused) as info:
        await off.complete({"messages": [{"role": "user", "content": "x"}]})
    assert info.value.status == 403
    calls = LlmProxy(Double(), provider="p", model="m", budget=Budget(10_000, 2))
    message = {"messages": [{"role": "user", "content": "x"}], "max_tokens": 10}
    await calls.complete(message)
    await calls.complete(message)
    with pytest.raises(LlmRefused) as info:
        await calls.complete(message)
    assert info.value.status == 429
    assert "calls" in calls.exhausted
    tokens = LlmProxy(Double((400, 100)), provider="p", model="m", budget=Budget(600, 10))
    await tokens.complete(message)
    with pytest.raises(LlmRefused) as info:
        await tokens.complete({"messages": [{"role": "user", "content": "y" * 600}]})
    assert info.value.status == 429
    assert tokens.budget.calls == 1  # the refused call was never sent
    with pytest.raises(LlmRefused) as info:
        await tokens.complete({"messages": [{"role": "user", "content": "x"}], "stream": True})
    assert info.value.status == 400


async def test_socket_protocol_with_the_sdk(db: Path) -> None:
    double = Double()
    llm = LlmProxy(double, provider="p", model="m", budget=Budget(10_000, 3))
    big = "x" * 300_000  # larger than any environment variable could carry
    tools = DataTools(db, ["people"], scope_source=SCOPE)
    bridge = Bridge("query", {"prompt": "q", "raw_output": big}, llm, tools)
    async with serve_bridge(bridge) as path:
        client = sdk.Bridge(str(path), timeout=10)

        def agent() -> dict[str, Any]:
            seen = {"inputs": client.inputs(), "tools": client.tools()}
            seen["rows"] = client.tool("execute_sql", sql="SELECT * FROM people")["rows"]
            try:
                client.tool("execute_sql", sql="SELECT * FROM secrets")
            except sdk.BridgeError as exc:
                seen["refused"] = exc.message
            seen["chat"] = client.chat([{"role": "user", "content": "hi"}], model="other")
            seen["health"] = client.health()
            seen["missing"] = client.request("GET", "/nope")[0]
            seen["artifact"] = client.request("POST", "/artifacts", {"filename": "a"})[0]
            client.finish("final answer")
            return seen

        seen = await trio.to_thread.run_sync(agent)
    assert seen["inputs"]["raw_output"] == big
    assert {t["function"]["name"] for t in seen["tools"]} == {"execute_sql", "get_schema"}
    assert all("email" not in r for r in seen["rows"])
    assert seen["refused"] == REJECTED
    assert seen["chat"]["model"] == "m"
    assert seen["health"]["budget"]["calls"] == 1
    assert seen["missing"] == 404
    assert seen["artifact"] == 404  # no artifact sink for this stage
    assert bridge.output == "final answer"
    assert not path.exists()


async def test_socket_refuses_oversized_and_garbage(tmp_path: Path) -> None:
    bridge = Bridge("mediator", {}, LlmProxy(None, provider="", model="", budget=Budget(1, 1)))
    async with serve_bridge(bridge) as path:

        def raw(data: bytes) -> bytes:
            import socket

            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(10)
                s.connect(str(path))
                chunks = []
                try:
                    s.sendall(data)
                    while chunk := s.recv(65536):
                        chunks.append(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the server stops reading an oversized body
                return b"".join(chunks)

        huge = (
            b"POST /output HTTP/1.1\r\nHost: b\r\nContent-Length: 9000000\r\n\r\n"
            + b"x" * 9_000_000
        )
        reply = await trio.to_thread.run_sync(raw, huge)
        assert reply == b"" or reply.startswith(b"HTTP/1.1 413")
        assert bridge.output is None
        assert (await trio.to_thread.run_sync(raw, b"\x00\x01garbage\r\n\r\n")).startswith(
            b"HTTP/1.1 400"
        )
        reply = await trio.to_thread.run_sync(
            raw, b"POST /tools/execute_sql HTTP/1.1\r\nHost: b\r\nContent-Length: 2\r\n\r\n{}"
        )
        assert json.loads(reply.split(b"\r\n\r\n", 1)[1])["error"] == "this stage has no tools"


async def test_http_upstream_sends_pinned_model_with_operator_key() -> None:
    import httpx
    from hivemind_rooms.bridge import (
        HttpUpstream,
        ProviderEndpoint,
        UpstreamError,
        providers_from_env,
    )

    seen: list[httpx.Request] = []

    def provider_double(request: httpx.Request) -> httpx.Response:
        """Test double of the upstream provider's HTTP endpoint (none is reachable here)."""
        seen.append(request)
        body = json.loads(request.content)
        if body["messages"][0]["content"] == "fail":
            return httpx.Response(500, text="secret provider detail")
        if body["messages"][0]["content"] == "junk":
            return httpx.Response(200, text="not json")
        reply = {"role": "assistant", "content": f"model={body['model']}"}
        return httpx.Response(200, json={"choices": [{"message": reply}], "usage": {}})

    endpoints = {"openrouter": ProviderEndpoint("https://provider.invalid/v1", "sk-operator")}
    upstream = HttpUpstream(endpoints, transport=httpx.MockTransport(provider_double))
    assert "sk-operator" not in repr(upstream)
    proxy = LlmProxy(upstream, provider="openrouter", model="pinned/m", budget=Budget(10_000, 5))
    reply = await proxy.complete({"model": "x", "messages": [{"role": "user", "content": "hi"}]})
    assert reply["choices"][0]["message"]["content"] == "model=pinned/m"
    assert seen[0].url == "https://provider.invalid/v1/chat/completions"
    assert seen[0].headers["authorization"] == "Bearer sk-operator"
    for content in ("fail", "junk"):
        with pytest.raises(LlmRefused) as info:
            await proxy.complete({"messages": [{"role": "user", "content": content}]})
        assert info.value.status == 502
        assert "secret provider detail" not in str(info.value)
    with pytest.raises(UpstreamError):
        await upstream.chat(provider="tinfoil", model="m", request={"messages": []})
    none = LlmProxy(None, provider="openrouter", model="m", budget=Budget(100, 1))
    with pytest.raises(LlmRefused) as info:
        await none.complete({"messages": [{"role": "user", "content": "x"}]})
    assert info.value.status == 503
    env = {"HIVEMIND_LLM_API_KEY": "k1", "HIVEMIND_TINFOIL_API_KEY": "k2"}
    assert set(providers_from_env(env)) == {"openrouter", "tinfoil"}
    assert providers_from_env({}) == {}
