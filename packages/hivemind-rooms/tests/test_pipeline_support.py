"""Shared pieces of the room-run tests (loaded by path; it holds no tests itself).

``TestDoubleProvider`` is a test double for the upstream LLM provider only
(no provider is reachable from this machine); the bridge's proxy in front of
it, the agents and the sandbox runner are the real ones.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from hivemind_rooms.app import create_app
from hivemind_rooms.manifest import OwnerKey
from hivemind_rooms.pipeline import EngineConfig, RunEngine
from hivemind_rooms.runners import LocalRunner, SandboxLimits
from hivemind_rooms.vault import FAST_KDF
from starlette.testclient import TestClient

REPO = Path(__file__).resolve().parents[3]
AGENTS = REPO / "agents"


def _load(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sup = _load("api_support", Path(__file__).with_name("api_support.py"))
pack = _load("agents_pack", AGENTS / "pack.py")


class TestDoubleProvider:
    """Test double of an upstream LLM provider (OpenAI response shape).

    ``script`` decides the reply for each request; every reply reports
    ``usage_per_call`` tokens. Requests are recorded for assertions.
    """

    __test__ = False

    def __init__(self, script: Any = None, usage_per_call: tuple[int, int] = (100, 50)) -> None:
        self.requests: list[dict[str, Any]] = []
        self._script = script or (lambda request: {"content": "ok"})
        self.usage = usage_per_call

    async def chat(self, *, provider: str, model: str, request: Mapping[str, Any]) -> dict:
        self.requests.append({"provider": provider, "model": model, **request})
        message = {"role": "assistant", **self._script(request)}
        return {
            "id": f"double-{len(self.requests)}",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": self.usage[0], "completion_tokens": self.usage[1]},
        }


def local_runner() -> LocalRunner:
    return LocalRunner(allow_local=True)


def engine_factory(runner: Any = None, upstream: Any = None, **config: Any) -> Any:
    def build(services: Any) -> RunEngine:
        return RunEngine(
            services,
            runner=runner if runner is not None else local_runner(),
            upstream=upstream,
            config=EngineConfig(**config),
            limits_factory=lambda memory, timeout: SandboxLimits(
                memory_mb=memory, timeout_s=timeout
            ),
        )

    return build


@contextlib.contextmanager
def client(
    tmp_path: Path, *, runner: Any = None, upstream: Any = None, **config: Any
) -> Iterator[TestClient]:
    app = create_app(
        sup.settings(tmp_path),
        kdf=FAST_KDF,
        run_engine=engine_factory(runner, upstream, **config),
    )
    with TestClient(app, backend="trio", raise_server_exceptions=True) as c:
        yield c


def upload(c: TestClient, key: str, agent: str, agent_type: str, **form: Any) -> str:
    data = {"name": agent, "agent_type": agent_type, "inspection_mode": "full", **form}
    archive = pack.pack_agent(AGENTS / agent)
    files = {"archive": ("agent.tar.gz", archive, "application/gzip")}
    r = c.post("/v1/room-agents", data=data, files=files, headers=sup.auth(key))
    assert r.status_code == 200, r.text
    return r.json()["agent_id"]


def sql(c: TestClient, key: str, statement: str, params: list[Any] | None = None) -> Any:
    r = c.post(
        "/v1/tenant/sql", json={"sql": statement, "params": params or []}, headers=sup.auth(key)
    )
    assert r.status_code == 200, r.text
    return r.json()


PEOPLE = [
    ("Ann", "ann@example.org", "Lisbon", 31),
    ("Bob", "bob@example.org", "Porto", 42),
    ("Cid", "cid@example.org", "Lisbon", 27),
]
SECRET_ROWS = [("CANARY-OTHER-TABLE-7f3e",)]


def seed(c: TestClient, key: str) -> None:
    sql(c, key, "CREATE TABLE people (name TEXT, email TEXT, city TEXT, age INTEGER)")
    for row in PEOPLE:
        sql(c, key, "INSERT INTO people VALUES (?, ?, ?, ?)", list(row))
    sql(c, key, "CREATE TABLE secrets (value TEXT)")
    for row in SECRET_ROWS:
        sql(c, key, "INSERT INTO secrets VALUES (?)", list(row))


def make_room(
    c: TestClient,
    tenant: dict[str, Any],
    *,
    scope: str = "default-scope",
    query: str = "default-query",
    mediator: str | None = "default-mediator",
    policy: str = "hide: email",
    providers: tuple[str, ...] = (),
    query_mode: str = "fixed",
    **fields: Any,
) -> dict[str, Any]:
    key = tenant["api_key"]
    scope_id = upload(c, key, scope, "scope")
    query_id = upload(c, key, query, "query")
    mediator_id = upload(c, key, mediator, "mediator") if mediator else ""
    fields.setdefault("allowed_tables", ["people"])
    envelope = sup.signed_room(
        tenant["tenant_id"],
        tenant.setdefault("owner_key", OwnerKey.generate()),
        scope_id,
        query_agent_id=query_id if query_mode == "fixed" else "",
        query_mode=query_mode,
        mediator_agent_id=mediator_id,
        policy=policy,
        llm_providers=providers,
        scope_visibility="inspectable",
        query_visibility="inspectable",
        **fields,
    )
    r = c.post("/v1/rooms", json={"envelope": envelope}, headers=sup.auth(key))
    assert r.status_code == 200, r.text
    return {**r.json(), "scope_id": scope_id, "query_id": query_id, "mediator_id": mediator_id}


def wait_run(c: TestClient, headers: dict[str, str], run_id: str, seconds: float = 90) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        r = c.get(f"/v1/runs/{run_id}", headers=headers)
        assert r.status_code == 200, r.text
        if r.json()["status"] in ("completed", "failed"):
            return r.json()
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} did not finish in {seconds}s")


def ask(c: TestClient, room: dict[str, Any], key: str, query: str, **body: Any) -> dict:
    r = c.post(
        f"/v1/rooms/{room['room_id']}/runs", json={"query": query, **body}, headers=sup.auth(key)
    )
    assert r.status_code == 200, r.text
    return wait_run(c, sup.auth(key), r.json()["run_id"])


def ledger(c: TestClient, key: str) -> dict:
    r = c.get("/v1/billing", headers=sup.auth(key))
    assert r.status_code == 200, r.text
    return r.json()


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


DOCKERFILE = (
    "FROM hivemind/agent-base:bookworm\nCOPY . /agent\nWORKDIR /agent\n"
    'CMD ["python3", "/agent/main.py"]\n'
)


def custom_agent(
    c: TestClient, key: str, tmp: Path, name: str, agent_type: str, code: str, **form: Any
) -> str:
    """Upload an agent whose ``main.py`` is ``code`` (the SDK is added by the pack step)."""
    directory = tmp / "agents-src" / name
    directory.mkdir(parents=True)
    (directory / "Dockerfile").write_text(DOCKERFILE)
    (directory / "main.py").write_text(code)
    data = {"name": name, "agent_type": agent_type, "inspection_mode": "full", **form}
    files = {"archive": ("agent.tar.gz", pack.pack_agent(directory), "application/gzip")}
    r = c.post("/v1/room-agents", data=data, files=files, headers=sup.auth(key))
    assert r.status_code == 200, r.text
    return r.json()["agent_id"]


def room_with(
    c: TestClient,
    tenant: dict[str, Any],
    *,
    scope_id: str,
    query_id: str,
    mediator_id: str = "",
    policy: str = "hide: email",
    providers: tuple[str, ...] = (),
    **fields: Any,
) -> dict[str, Any]:
    fields.setdefault("allowed_tables", ["people"])
    fields.setdefault("query_mode", "fixed")
    envelope = sup.signed_room(
        tenant["tenant_id"],
        tenant.setdefault("owner_key", OwnerKey.generate()),
        scope_id,
        query_agent_id=query_id,
        mediator_agent_id=mediator_id,
        policy=policy,
        llm_providers=providers,
        scope_visibility="inspectable",
        **{"query_visibility": "inspectable", **fields},
    )
    r = c.post("/v1/rooms", json={"envelope": envelope}, headers=sup.auth(tenant["api_key"]))
    assert r.status_code == 200, r.text
    return {**r.json(), "scope_id": scope_id, "query_id": query_id, "mediator_id": mediator_id}


def submit(
    c: TestClient, room: dict[str, Any], headers: dict[str, str], query: str, **body: Any
) -> str:
    r = c.post(f"/v1/rooms/{room['room_id']}/runs", json={"query": query, **body}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["run_id"]
