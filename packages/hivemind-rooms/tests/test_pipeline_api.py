"""Room runs through the HTTP API (``create_app``) with the local runner enabled."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import time
from pathlib import Path

import pytest
from hivemind_rooms.attestation import (
    AgentPin,
    RunAttestationError,
    RunExpectation,
    text_hash,
    verify_run_attestation,
)
from hivemind_rooms.pipeline import INTERRUPTED, AgentRef, RunPlan
from hivemind_rooms.pipeline._mode import scope_mode

_spec = importlib.util.spec_from_file_location(
    "test_pipeline_support", Path(__file__).with_name("test_pipeline_support.py")
)
rs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rs)
sup = rs.sup


def test_owner_run_scoped_and_mediated(tmp_path: Path) -> None:
    with rs.client(tmp_path) as c:
        t = sup.new_tenant(c)
        rs.seed(c, t["api_key"])
        room = rs.make_room(c, t, policy="hide: email\nredact: Porto")
        run = rs.ask(c, room, t["api_key"], "who lives where?")
        assert run["status"] == "completed", run["error"]
        out = run["output"]
        assert "Lisbon" in out
        assert "Ann" in out
        assert "@example.org" not in out  # hidden by the scope function
        assert "Porto" not in out
        assert "[redacted]" in out
        assert "CANARY-OTHER-TABLE" not in out
        stages = run["usage"]["stages"]
        assert set(stages) == {"scope", "query", "mediator"}
        assert stages["query"]["tool_call_counts"]["execute_sql"] >= 1
        assert run["attestation"] is not None
        assert run["attestation"]["body"]["agents"]["mediator"]["agent_id"] == room["mediator_id"]
        # nothing outside the scope is kept with the run (usage holds counts, never data)
        row = c.app.state.services.storage.tenant(t["tenant_id"]).get_run(run["run_id"])
        stored = json.dumps({k: row[k] for k in ("usage_json", "attestation", "error", "output")})
        assert "example.org" not in stored
        assert "Porto" not in stored


SLEEPER = "import time\ntime.sleep(120)\n"
BAD_SCOPE = r"""
import json
from hivemind_agent import Bridge
src = "import os\ndef scope(sql, params, rows):\n    return {'allow': True, 'rows': rows}\n"
Bridge().finish(json.dumps({"scope_fn": src}))
"""
FAILING = "import sys\nsys.stderr.write('raw data: ann@example.org\\n')\nsys.exit(3)\n"
LEAKY_QUERY = (
    "import sys\nfrom hivemind_agent import Bridge\n"
    "b = Bridge()\nrows = b.tool('execute_sql', sql='SELECT * FROM people')['rows']\n"
    "sys.stderr.write(repr(rows))\nsys.exit(2)\n"
)
ARTIFACT_QUERY = (
    "from hivemind_agent import Bridge\n"
    "b = Bridge()\nb.upload_artifact('report.md', b'# report\\n')\nb.finish('see the report')\n"
)


def _balance(c, key: str) -> int:
    return rs.ledger(c, key)["balance_micro_usd"]


def test_scope_failure_stops_before_any_query_agent(tmp_path: Path) -> None:
    with rs.client(tmp_path) as c:
        t = sup.new_tenant(c)
        rs.seed(c, t["api_key"])
        scope = rs.custom_agent(c, t["api_key"], tmp_path, "bad-scope", "scope", BAD_SCOPE)
        query = rs.upload(c, t["api_key"], "default-query", "query")
        room = rs.room_with(c, t, scope_id=scope, query_id=query)
        run = rs.wait_run(
            c, sup.auth(t["api_key"]), rs.submit(c, room, sup.auth(t["api_key"]), "q")
        )
        assert run["status"] == "failed"
        assert run["error"].startswith("Scope agent failed: Import")
        assert run["output"] is None
        assert set(run["usage"]["stages"]) == {"scope"}  # the query stage never started
        assert run["attestation"]["body"]["status"] == "failed"


def test_mediator_failure_fails_closed_without_quoting_data(tmp_path: Path) -> None:
    with rs.client(tmp_path) as c:
        t = sup.new_tenant(c)
        rs.seed(c, t["api_key"])
        key = t["api_key"]
        scope = rs.upload(c, key, "default-scope", "scope")
        query = rs.upload(c, key, "default-query", "query")
        mediator = rs.custom_agent(c, key, tmp_path, "bad-mediator", "mediator", FAILING)
        room = rs.room_with(c, t, scope_id=scope, query_id=query, mediator_id=mediator)
        run = rs.wait_run(c, sup.auth(key), rs.submit(c, room, sup.auth(key), "who?"))
        assert run["status"] == "failed"
        assert run["output"] is None
        assert "exit_code=3" in run["error"]
        assert "example.org" not in run["error"]
        assert "Lisbon" not in run["error"]
        # a query agent before a mediator cannot leak through its error text either
        leaky = rs.custom_agent(c, key, tmp_path, "leaky", "query", LEAKY_QUERY)
        mediator = rs.upload(c, key, "default-mediator", "mediator")
        room = rs.room_with(c, t, scope_id=scope, query_id=leaky, mediator_id=mediator)
        run = rs.wait_run(c, sup.auth(key), rs.submit(c, room, sup.auth(key), "who?"))
        assert run["status"] == "failed"
        assert "exit_code=2" in run["error"]
        assert "Lisbon" not in run["error"]


def test_invite_run_is_billed_to_its_payer_and_budget_stops_it(tmp_path: Path) -> None:
    def always_a_tool_call(request: dict) -> dict:
        arguments = '{"sql": "SELECT * FROM people"}'
        call = {"id": "c1", "type": "function",
                "function": {"name": "execute_sql", "arguments": arguments}}  # fmt: skip
        return {"content": None, "tool_calls": [call]}

    double = rs.TestDoubleProvider(always_a_tool_call, usage_per_call=(400, 100))
    with rs.client(tmp_path, upstream=double) as c:
        t, payer = sup.new_tenant(c, "owner"), sup.new_tenant(c, "payer")
        rs.seed(c, t["api_key"])
        r = c.post(
            f"/v1/admin/billing/{payer['tenant_id']}/credits",
            json={"amount_usd": "5", "note": "test"},
            headers=sup.admin_headers(),
        )
        assert r.status_code == 200, r.text
        room = rs.make_room(c, t, query="default-query-llm", providers=("openrouter",))
        invite = sup.auth(room["token"])
        assert (
            c.post(
                f"/v1/rooms/{room['room_id']}/runs", json={"query": "q"}, headers=invite
            ).status_code
            == 402
        )
        owner_before, payer_before = _balance(c, t["api_key"]), _balance(c, payer["api_key"])
        paying = {**invite, "X-Hivemind-Api-Key": payer["api_key"]}
        run_id = rs.submit(
            c, room, paying, "who lives in Lisbon?", max_tokens=3000, model="moonshotai/kimi-k2.6"
        )
        run = rs.wait_run(c, invite, run_id)
        assert run["status"] == "failed"
        assert "query stage stopped: Budget exhausted" in run["error"]
        query = run["usage"]["stages"]["query"]
        assert query["calls"] >= 1
        assert query["total_tokens"] <= query["max_tokens"]
        assert len(double.requests) == query["calls"]
        assert {r["model"] for r in double.requests} == {"moonshotai/kimi-k2.6"}
        assert not any("@example.org" in rs.dumps(r["messages"]) for r in double.requests)
        expected = -(
            -(query["prompt_tokens"] * 750_000 + query["completion_tokens"] * 3_500_000)
            // 1_000_000
        )
        assert expected > 0
        statement = rs.ledger(c, payer["api_key"])
        entries = {
            e["kind"]: e["amount_micro_usd"] for e in statement["ledger"] if e["run_id"] == run_id
        }
        assert entries["usage_charge"] == -expected
        assert entries["usage_release"] == -entries["usage_hold"]
        assert _balance(c, payer["api_key"]) == payer_before - expected
        assert _balance(c, t["api_key"]) == owner_before  # the owner pays nothing
        assert run["billing_cost_micro_usd"] == expected


def test_interrupted_run_is_failed_and_its_hold_released(tmp_path: Path) -> None:
    with rs.client(tmp_path) as c:
        t = sup.new_tenant(c)
        rs.seed(c, t["api_key"])
        key = t["api_key"]
        scope = rs.custom_agent(c, key, tmp_path, "slow-scope", "scope", SLEEPER)
        query = rs.upload(c, key, "default-query", "query")
        room = rs.room_with(c, t, scope_id=scope, query_id=query, providers=("openrouter",))
        before = _balance(c, key)
        run_id = rs.submit(c, room, sup.auth(key), "q")
        deadline = time.monotonic() + 30
        while c.get(f"/v1/runs/{run_id}", headers=sup.auth(key)).json()["status"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert _balance(c, key) < before  # the hold is placed
    with rs.client(tmp_path) as c:
        # the prompt is sealed under the room key: the run reads once the room is opened
        sealed = c.get(f"/v1/runs/{run_id}", headers=sup.auth(key))
        assert (sealed.status_code, sealed.json()["error"]) == (503, "room_sealed")
        r = c.post(f"/v1/rooms/{room['room_id']}/open", headers=sup.auth(key))
        assert r.status_code == 200, r.text
        run = c.get(f"/v1/runs/{run_id}", headers=sup.auth(key)).json()
        assert run["status"] == "failed"
        assert run["prompt"] == "q"
        assert run["error"] == INTERRUPTED
        assert _balance(c, key) == before
        kinds = [e["kind"] for e in rs.ledger(c, key)["ledger"] if e["run_id"] == run_id]
        assert sorted(kinds) == ["usage_hold", "usage_release"]


def test_run_attestation_verifies_and_tampering_fails(tmp_path: Path) -> None:
    with rs.client(tmp_path) as c:
        t = sup.new_tenant(c)
        rs.seed(c, t["api_key"])
        room = rs.make_room(c, t)
        prompt = "list the cities"
        run = rs.ask(c, room, t["api_key"], prompt)
        assert run["status"] == "completed", run["error"]
        service = c.app.state.services.attestation
        agents = {
            "scope": AgentPin(room["scope_id"], _digest(c, t, room["scope_id"])),
            "query": AgentPin(room["query_id"], _digest(c, t, room["query_id"])),
            "mediator": AgentPin(room["mediator_id"], _digest(c, t, room["mediator_id"])),
        }
        expect = RunExpectation(
            signer_pubkey_b64=service.run_signer.public_key_b64(),
            room_id=room["room_id"],
            manifest_hash=c.get(
                f"/v1/rooms/{room['room_id']}", headers=sup.auth(t["api_key"])
            ).json()["manifest_hash"],
            compose_hash=service.compose_hash,
            platform=service.platform,
            agents=agents,
            models={},
            prompt=prompt,
            output=run["output"],
            now=int(time.time()),
            run_id=run["run_id"],
        )
        att = run["attestation"]
        assert verify_run_attestation(att, expected=expect)["run_id"] == run["run_id"]
        for change, field in [
            ({"output": run["output"] + " "}, "output_hash"),
            ({"prompt": prompt + "?"}, "prompt_hash"),
            ({"room_id": "room_000000000000"}, "room_id"),
            ({"manifest_hash": "0" * 64}, "manifest_hash"),
            ({"compose_hash": "f" * 64}, "compose_hash"),
        ]:
            with pytest.raises(RunAttestationError) as info:
                verify_run_attestation(att, expected=dataclasses.replace(expect, **change))
            assert info.value.field == field
        forged = json.loads(json.dumps(att))
        forged["body"]["output_hash"] = text_hash("something else")
        with pytest.raises(RunAttestationError) as info:
            verify_run_attestation(
                forged, expected=dataclasses.replace(expect, output="something else")
            )
        assert info.value.field == "signature"


def _digest(c, tenant: dict, agent_id: str) -> str:
    r = c.get(f"/v1/room-agents/{agent_id}", headers=sup.auth(tenant["api_key"]))
    assert r.status_code == 200, r.text
    return c.app.state.services.storage.tenant(tenant["tenant_id"]).get_agent(agent_id)[
        "files_digest"
    ]


def test_artifacts_only_without_mediator_and_idempotent_replay(tmp_path: Path) -> None:
    with rs.client(tmp_path) as c:
        t = sup.new_tenant(c)
        rs.seed(c, t["api_key"])
        key = t["api_key"]
        scope = rs.upload(c, key, "default-scope", "scope")
        query = rs.custom_agent(c, key, tmp_path, "artifact-query", "query", ARTIFACT_QUERY)
        room = rs.room_with(c, t, scope_id=scope, query_id=query)
        headers = {**sup.auth(key), "X-Hivemind-Idempotency-Key": "abcdef0123456789"}
        run_id = rs.submit(c, room, headers, "report please")
        assert run_id == "abcdef0123456789"
        again = c.post(f"/v1/rooms/{room['room_id']}/runs", json={"query": "x"}, headers=headers)
        assert again.json()["idempotent_replay"] is True
        run = rs.wait_run(c, sup.auth(key), run_id)
        assert run["status"] == "completed", run["error"]
        assert run["artifacts"] == ["report.md"]
        r = c.get(f"/v1/runs/{run_id}/artifacts/report.md", headers=sup.auth(key))
        assert r.status_code == 200
        assert r.content == b"# report\n"
        assert r.headers["cache-control"] == "no-cache, no-store"
        assert (
            c.get(f"/v1/runs/{run_id}/artifacts/other.md", headers=sup.auth(key)).status_code == 404
        )
        # with a pinned mediator the query agent has no artifact endpoint: the run fails closed
        mediator = rs.upload(c, key, "default-mediator", "mediator")
        room = rs.room_with(c, t, scope_id=scope, query_id=query, mediator_id=mediator)
        run = rs.wait_run(c, sup.auth(key), rs.submit(c, room, sup.auth(key), "report please"))
        assert run["status"] == "failed"
        assert run["artifacts"] == []


BIG_QUERY = (
    "from hivemind_agent import Bridge\n"
    "Bridge().finish(''.join(f'line {i:06d} ' + 'x' * 40 + '\\n' for i in range(6000)))\n"
)
DIGEST_MEDIATOR = (
    "import hashlib\nfrom hivemind_agent import Bridge\n"
    "b = Bridge()\nraw = b.inputs()['raw_output']\n"
    "b.finish(f'{len(raw)} {hashlib.sha256(raw.encode()).hexdigest()}')\n"
)


def test_large_raw_output_reaches_the_mediator_intact(tmp_path: Path) -> None:
    expected = "".join(f"line {i:06d} " + "x" * 40 + "\n" for i in range(6000)).strip()
    assert len(expected) > 256 * 1024
    with rs.client(tmp_path) as c:
        t = sup.new_tenant(c)
        rs.seed(c, t["api_key"])
        key = t["api_key"]
        scope = rs.upload(c, key, "default-scope", "scope")
        query = rs.custom_agent(c, key, tmp_path, "big", "query", BIG_QUERY)
        mediator = rs.custom_agent(c, key, tmp_path, "digest", "mediator", DIGEST_MEDIATOR)
        room = rs.room_with(c, t, scope_id=scope, query_id=query, mediator_id=mediator)
        run = rs.wait_run(c, sup.auth(key), rs.submit(c, room, sup.auth(key), "q"))
        assert run["status"] == "completed", run["error"]
        digest = hashlib.sha256(expected.encode()).hexdigest()
        assert run["output"] == f"{len(expected)} {digest}"


def test_stage_timeout_fails_the_run(tmp_path: Path) -> None:
    with rs.client(tmp_path) as c:
        t = sup.new_tenant(c)
        rs.seed(c, t["api_key"])
        key = t["api_key"]
        scope = rs.upload(c, key, "default-scope", "scope")
        query = rs.custom_agent(c, key, tmp_path, "sleepy", "query", SLEEPER)
        room = rs.room_with(c, t, scope_id=scope, query_id=query)
        started = time.monotonic()
        run = rs.wait_run(
            c, sup.auth(key), rs.submit(c, room, sup.auth(key), "q", timeout_seconds=2)
        )
        assert run["status"] == "failed"
        assert run["error"] == f"Agent '{query}' (query) timed out after 2s"
        assert time.monotonic() - started < 30


def test_a_running_run_reports_its_stage_and_budget(tmp_path: Path) -> None:
    with rs.client(tmp_path) as c:
        t = sup.new_tenant(c)
        rs.seed(c, t["api_key"])
        key = t["api_key"]
        scope = rs.upload(c, key, "default-scope", "scope")
        query = rs.custom_agent(c, key, tmp_path, "sleepy", "query", SLEEPER)
        room = rs.room_with(c, t, scope_id=scope, query_id=query)
        run_id = rs.submit(c, room, sup.auth(key), "q", timeout_seconds=3)
        seen: dict = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and seen.get("stage") != "query":
            body = c.get(f"/v1/runs/{run_id}", headers=sup.auth(key)).json()
            seen = body["progress"] or {}
            time.sleep(0.05)
        assert seen["stage"] == "query"
        assert seen["stage_started_at"] > 0
        assert seen["llm_calls"] == 0
        assert seen["max_tokens"] > 0
        assert set(seen) == {"stage", "stage_started_at", "llm_calls", "total_tokens", "max_tokens"}
        done = rs.wait_run(c, sup.auth(key), run_id)
        assert done["status"] == "failed"
        assert done["progress"] is None  # nothing is reported once the run is over


SOURCE_READING_SCOPE = r"""
import json
from hivemind_agent import Bridge, BridgeError
b = Bridge()
listing = b.tool("list_query_agent_files")
try:
    text = b.tool("read_query_agent_file", path="main.py")["content"]
    verdict = "reads-sql" if "execute_sql" in text else "no-sql"
except BridgeError as exc:
    verdict = "sealed" if "sealed" in exc.message else "error"
marker = verdict + ("-listed" if "main.py" in listing["files"] else "-unlisted")
src = (
    "def scope(sql, params, rows):\n"
    "    out = []\n"
    "    for row in rows:\n"
    "        out.append({'city': row.get('city', ''), 'marker': '" + marker + "'})\n"
    "    return {'allow': True, 'rows': out}\n"
)
b.finish(json.dumps({"scope_fn": src}))
"""


@pytest.mark.parametrize(("mode", "marker"), [("full", "reads-sql"), ("sealed", "sealed")])
def test_scope_agent_reads_the_query_agent_source(tmp_path: Path, mode: str, marker: str) -> None:
    with rs.client(tmp_path) as c:
        t = sup.new_tenant(c)
        rs.seed(c, t["api_key"])
        key = t["api_key"]
        scope = rs.custom_agent(c, key, tmp_path, "reader", "scope", SOURCE_READING_SCOPE)
        query = rs.upload(c, key, "simple-query", "query", inspection_mode=mode)
        room = rs.room_with(
            c, t, scope_id=scope, query_id=query,
            query_visibility="sealed" if mode == "sealed" else "inspectable",
        )  # fmt: skip
        run = rs.wait_run(
            c, sup.auth(key), rs.submit(c, room, sup.auth(key), "SELECT * FROM people")
        )
        assert run["status"] == "completed", run["error"]
        assert f"{marker}-listed" in run["output"]
        assert "Ann" not in run["output"]  # the scope function kept only city and marker


def _plan(**changes: object) -> RunPlan:
    ref = AgentRef("default-query", "d", "d", "full", 256, 60, 20)
    plan = RunPlan(
        run_id="r", tenant_id="t", room_id="room", manifest_hash="0" * 64, prompt="how many?",
        policy="", allowed_tables=["people"], agents={"scope": ref, "query": ref}, provider="",
        models={}, vault_items=[], max_tokens=10, max_calls=None, timeout_s=None,
        allow_artifacts=True, payer_tenant_id="t", payer_token_id="", hold_micro_usd=0,
    )  # fmt: skip
    return dataclasses.replace(plan, **changes)


def test_scope_mode_table() -> None:
    sealed = AgentRef("x", "d", "d", "sealed", 256, 60, 20)
    custom = AgentRef("abc123", "d", "d", "full", 256, 60, 20)
    cases = [
        (_plan(), "", ("fast", "default_fast_path")),
        (_plan(), "rehearsed", ("rehearsed", "operator_override")),
        (_plan(agents={"query": sealed}), "",
         ("sealed_conservative", "query_agent_inspection_mode_sealed")),
        (_plan(vault_items=[{"text": "x"}]), "", ("rehearsed", "room_vault_items_present")),
        (_plan(agents={"query": custom}), "", ("rehearsed", "custom_or_uploaded_query_agent")),
        (_plan(prompt="write a PDF report"), "", ("rehearsed", "artifact_or_report_prompt")),
        (_plan(prompt="pdf", allow_artifacts=False), "", ("fast", "default_fast_path")),
        (_plan(policy="must not, unless asked"), "", ("rehearsed", "complex_policy")),
        (_plan(policy="x" * 300), "", ("rehearsed", "complex_policy")),
    ]  # fmt: skip
    for plan, override, expected in cases:
        assert scope_mode(plan, override) == expected
    with pytest.raises(ValueError, match="scope mode"):
        scope_mode(_plan(), "fastest")


def test_operator_disabled_routes_refuse_before_any_hold(tmp_path: Path) -> None:
    blocked = frozenset({"openrouter:moonshotai/kimi-k2.6"})
    with rs.client(tmp_path, upstream=rs.TestDoubleProvider(), disabled_routes=blocked) as c:
        t = sup.new_tenant(c)
        rs.seed(c, t["api_key"])
        room = rs.make_room(c, t, providers=("openrouter",))
        url = f"/v1/rooms/{room['room_id']}/runs"
        before = rs.ledger(c, t["api_key"])["ledger"]
        runs = c.get("/v1/runs", headers=sup.auth(t["api_key"])).json()
        r = c.post(url, json={"query": "q"}, headers=sup.auth(t["api_key"]))
        assert r.status_code == 503
        assert "disabled by operator" in r.text
        assert c.get("/v1/runs", headers=sup.auth(t["api_key"])).json() == runs
        assert rs.ledger(c, t["api_key"])["ledger"] == before
        body = {"query": "q", "model": "openai/gpt-5-mini"}
        r = c.post(url, json=body, headers=sup.auth(t["api_key"]))
        assert r.status_code == 200, r.text
