"""The agents in ``agents/``: the shared SDK, deterministic defaults and the two-party example."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import tarfile
from pathlib import Path

import pytest
from hivemind_rooms.scope import apply_scope, check_scope_source

_spec = importlib.util.spec_from_file_location(
    "test_pipeline_support", Path(__file__).with_name("test_pipeline_support.py")
)
rs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rs)
sup = rs.sup
AGENTS = rs.AGENTS


sdk = rs._load("hivemind_agent", AGENTS / "sdk" / "hivemind_agent.py")


def test_every_agent_has_a_dockerfile_on_the_base_and_packs_the_one_sdk() -> None:
    agents = [p for p in AGENTS.iterdir() if (p / "main.py").is_file()]
    assert {p.name for p in agents} >= {
        "default-scope", "default-query", "default-mediator", "default-query-llm",
        "default-mediator-llm", "default-scope-llm", "simple-query", "redact-mediator",
        "dinner-negotiation",
    }  # fmt: skip
    for agent in agents:
        dockerfile = (agent / "Dockerfile").read_text()
        assert dockerfile.startswith("FROM hivemind/agent-base:bookworm\n"), agent
        # one SDK, not a copy per agent: packing adds the shared one
        assert not (agent / "hivemind_agent.py").exists(), agent
        with tarfile.open(fileobj=io.BytesIO(rs.pack.pack_agent(agent))) as tar:
            names = tar.getnames()
            sdk = tar.extractfile("hivemind_agent.py")
            assert sdk is not None
            assert sdk.read() == (AGENTS / "sdk" / "hivemind_agent.py").read_bytes()
        assert "main.py" in names


def test_sdk_and_agents_import_only_the_standard_library() -> None:
    allowed_local = {"hivemind_agent"}
    for path in [AGENTS / "sdk" / "hivemind_agent.py", *AGENTS.glob("*/main.py")]:
        for line in path.read_text().splitlines():
            words = line.split()
            if words[:1] in (["import"], ["from"]) and len(words) > 1:
                top = words[1].split(".")[0]
                assert top in sys.stdlib_module_names or top in allowed_local, (path, top)


@pytest.mark.parametrize(
    ("policy", "hidden", "cap"),
    [
        ("", {"email", "phone", "ssn"}, 200),
        ("hide: City, salary\nmax rows: 1", {"city", "salary", "email"}, 1),
    ],
)
async def test_default_scope_function(policy: str, hidden: set[str], cap: int) -> None:
    source = check_scope_source(sdk.column_scope_fn(policy))
    rows = [
        {"name": "Ann", "email": "a@x", "city": "Lisbon", "salary": 1, "user_id": 7, "phone": "1"},
        {"name": "Bob", "email": "b@x", "city": "Porto", "salary": 2, "user_id": 8, "phone": "2"},
    ]
    decision = await apply_scope(source, "SELECT *", [], rows)
    assert decision.allow
    assert len(decision.rows) == min(cap, 2)
    for row in decision.rows:
        assert not {k.lower() for k in row} & hidden
        assert "user_id" not in row
        assert row["name"] in ("Ann", "Bob")


def test_default_mediator_redaction() -> None:
    text = "Ann (ann@example.org, +351 912 345 678) lives in Lisbon; id 123456789012."
    out = sdk.redact(text, "redact: lisbon")
    assert "ann@example.org" not in out
    assert "912" not in out
    assert "123456789012" not in out
    assert "Lisbon" not in out
    assert out.count("[redacted]") == 4
    assert out.startswith("Ann (")


def _evenings(c, key: str) -> None:
    rs.sql(c, key, "CREATE TABLE evenings (day TEXT, free INTEGER, note TEXT)")
    for day, free, note in [
        ("2026-12-02", 0, "ALICE-PRIVATE-dentist"),
        ("2026-12-04", 1, "ALICE-PRIVATE-free"),
        ("2026-12-05", 1, "ALICE-PRIVATE-free"),
    ]:
        rs.sql(c, key, "INSERT INTO evenings VALUES (?, ?, ?)", [day, free, note])


def _upload_into_room(c, room_id: str, headers: dict, agent: str, query: str) -> dict:
    archive = rs.pack.pack_agent(AGENTS / agent)
    r = c.post(
        f"/v1/rooms/{room_id}/query-agents",
        data={"query": query, "inspection_mode": "sealed"},
        files={"archive": ("a.tar.gz", archive, "application/gzip")},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_dinner_negotiation_with_a_sealed_participant_agent(tmp_path: Path) -> None:
    with rs.client(tmp_path) as c:
        alice, bob = sup.new_tenant(c, "alice"), sup.new_tenant(c, "bob")
        key = alice["api_key"]
        _evenings(c, key)
        scope = rs.upload(c, key, "default-scope", "scope")
        mediator = rs.upload(c, key, "redact-mediator", "mediator")
        room = rs.room_with(
            c, alice, scope_id=scope, query_id="", mediator_id=mediator,
            policy="hide: note", allowed_tables=["evenings"], query_mode="uploadable",
        )  # fmt: skip
        invite = sup.auth(room["token"])
        paying = {**invite, "X-Hivemind-Api-Key": bob["api_key"]}
        uploaded = _upload_into_room(c, room["room_id"], paying, "dinner-negotiation", "when?")
        assert uploaded["inspection_mode"] == "sealed"
        view = c.get(f"/v1/room-agents/{uploaded['agent_id']}/attest", headers=invite)
        assert view.status_code == 200  # the uploader can pin what it uploaded
        assert view.json()["files_digest_sha256"]
        run = rs.wait_run(c, invite, uploaded["run_id"])
        assert run["status"] == "completed", run["error"]
        assert run["output"] == "Dinner on 2026-12-04."
        # Bob's calendar travels sealed: the owner can neither read nor run his agent
        owner = sup.auth(key)
        agent_id = uploaded["agent_id"]
        r = c.get(f"/v1/room-agents/{agent_id}/files/bob.json", headers=owner)
        assert r.status_code == 403
        stored = c.app.state.services.storage.tenant(alice["tenant_id"]).agent_file(
            agent_id, "bob.json"
        )
        assert stored["content"] is None
        assert b"2026-12-05" not in bytes(stored["ciphertext"])
        body = {"query": "print your calendar", "query_agent_id": agent_id}
        r = c.post(f"/v1/rooms/{room['room_id']}/runs", json=body, headers=owner)
        assert r.status_code == 403
        # Bob may run it again
        r = c.post(f"/v1/rooms/{room['room_id']}/runs", json=body, headers=paying)
        assert r.status_code == 200, r.text
        assert rs.wait_run(c, invite, r.json()["run_id"])["output"] == "Dinner on 2026-12-04."
        # a fixed room of the owner cannot pin Bob's uploaded agent either
        envelope = sup.signed_room(
            alice["tenant_id"], alice["owner_key"], scope, query_agent_id=agent_id,
            query_mode="fixed", allowed_tables=["evenings"], scope_visibility="inspectable",
            query_visibility="sealed",
        )  # fmt: skip
        r = c.post("/v1/rooms", json={"envelope": envelope}, headers=owner)
        assert r.status_code in (400, 403, 409), r.text


def test_llm_mediator_keeps_the_rule_floor(tmp_path: Path) -> None:
    leaky = rs.TestDoubleProvider(lambda request: {"content": "write to ann@example.org"})
    with rs.client(tmp_path, upstream=leaky) as c:
        t = sup.new_tenant(c)
        rs.seed(c, t["api_key"])
        room = rs.make_room(
            c, t, mediator="default-mediator-llm", providers=("openrouter",), policy="hide: email"
        )
        run = rs.ask(c, room, t["api_key"], "who?", mediator_model="openai/gpt-5-mini")
        assert run["status"] == "completed", run["error"]
        assert run["output"] == "write to [redacted]"
        assert leaky.requests[-1]["model"] == "openai/gpt-5-mini"
        raw = json.dumps(leaky.requests[-1]["messages"])
        assert "Lisbon" in raw  # the mediator model saw the scoped raw output
        assert "example.org" not in raw  # never the hidden column


MODEL_SCOPE = """def scope(sql, params, rows):
    out = []
    for row in rows:
        out.append({"name": row.get("name", "")})
    return {"allow": True, "rows": out}
"""


@pytest.mark.parametrize("answer", ["model", "junk"])
def test_llm_scope_agent_and_its_fallback(tmp_path: Path, answer: str) -> None:
    def model(request: dict) -> dict:
        if answer == "junk":
            return {"content": "I cannot help with that."}
        return {"content": "Sure: " + json.dumps({"scope_fn": MODEL_SCOPE})}

    double = rs.TestDoubleProvider(model)
    with rs.client(tmp_path, upstream=double) as c:
        t = sup.new_tenant(c)
        rs.seed(c, t["api_key"])
        room = rs.make_room(
            c, t, scope="default-scope-llm", mediator=None, providers=("openrouter",)
        )
        run = rs.ask(c, room, t["api_key"], "SQL: SELECT * FROM people")
        assert run["status"] == "completed", run["error"]
        assert "Ann" in run["output"]
        assert "example.org" not in run["output"]
        if answer == "model":
            assert "Lisbon" not in run["output"]  # the model's function kept only names
        else:
            assert "Lisbon" in run["output"]  # the deterministic fallback hides email only
        sent = json.dumps(double.requests[0]["messages"])
        assert "hide: email" in sent
        assert "ann@example.org" not in sent  # the scope model sees the schema, not rows
