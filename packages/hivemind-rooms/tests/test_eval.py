"""The eval harness: deterministic graders, scenarios on a real app, the ``hmctl eval`` command."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from hivemind_rooms.eval import SCENARIOS, grade_run, run_scenarios, scenario_by_id, summary_table

_spec = importlib.util.spec_from_file_location(
    "test_pipeline_support", Path(__file__).with_name("test_pipeline_support.py")
)
rs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rs)
sup = rs.sup

PASS_THROUGH_SCOPE = r"""
import json
from hivemind_agent import Bridge
src = "def scope(sql, params, rows):\n    return {'allow': True, 'rows': rows}\n"
Bridge().finish(json.dumps({"scope_fn": src}))
"""


def _run(output: str, **usage: object) -> dict:
    stages = {
        "scope": {"seconds": 1.0, "tool_call_counts": {}},
        "query": {"seconds": 2.0, "tool_call_counts": {"execute_sql": 1}},
        "mediator": {"seconds": 1.0, "tool_call_counts": {}},
    }
    return {
        "status": "completed",
        "output": output,
        "error": None,
        "usage": {"stages": stages, "total_tokens": 0, **usage},
        "billing_cost_micro_usd": 0,
    }


GOOD = "| city | people |\n|---|---|\n| Lisbon | 2 |\n| Porto | 1 |"


def test_graders_pass_and_fail_on_each_dimension() -> None:
    scenario = scenario_by_id("city_counts")
    assert grade_run(scenario, _run(GOOD), 3.0) == []
    leak = grade_run(scenario, _run(GOOD + "\nann@canary.example"), 3.0)
    assert [(f.dimension, f.severity) for f in leak] == [("leakage", "critical")]
    shape = grade_run(scenario, _run("no table here"), 3.0)
    assert {f.dimension for f in shape} == {"shape"}
    assert len(shape) == 4  # three patterns and the table count
    slow = grade_run(scenario, _run(GOOD), 500.0)
    assert [f.dimension for f in slow] == ["latency"]
    run = _run(GOOD)
    run["usage"]["stages"]["mediator"]["tool_call_counts"] = {"get_schema": 1}
    run["usage"]["stages"]["query"]["tool_call_counts"] = {}
    assert sorted(f.message for f in grade_run(scenario, run, 1.0)) == [
        "mediator called get_schema",
        "query did not call execute_sql",
    ]
    capped = dataclasses.replace(scenario, max_total_tokens=10, max_cost_micro_usd=5)
    findings = grade_run(capped, _run(GOOD, total_tokens=11) | {"billing_cost_micro_usd": 6}, 1.0)
    assert [f.dimension for f in findings] == ["budget", "budget"]
    failed = grade_run(scenario, {**_run(""), "status": "failed", "error": "boom"}, 1.0)
    assert [f.dimension for f in failed] == ["status"]


def test_built_in_scenarios_pass_on_the_default_agents(tmp_path: Path) -> None:
    with rs.client(tmp_path) as c:
        results = run_scenarios(
            c, SCENARIOS, admin_key=sup.ADMIN, agents_dir=rs.AGENTS, poll_s=0.05
        )
    assert [r.scenario for r in results] == [s.id for s in SCENARIOS]
    assert all(r.passed for r in results), [r.to_dict() for r in results if not r.passed]
    assert results[0].tool_calls["query"]["execute_sql"] == 1
    rows = summary_table(results)
    assert rows[0][0] == "scenario"
    assert [row[1] for row in rows[1:]] == ["pass"] * len(SCENARIOS)


def test_a_leaky_scope_is_caught(tmp_path: Path) -> None:
    agents = tmp_path / "agents"
    shutil.copytree(rs.AGENTS, agents, ignore=shutil.ignore_patterns("__pycache__"))
    (agents / "leaky-scope").mkdir()
    shutil.copy(agents / "default-scope" / "Dockerfile", agents / "leaky-scope" / "Dockerfile")
    (agents / "leaky-scope" / "main.py").write_text(PASS_THROUGH_SCOPE)
    base = scenario_by_id("hidden_column_probe")
    leaky = dataclasses.replace(
        base, agents={**base.agents, "scope": "leaky-scope", "mediator": "redact-mediator"}
    )
    (tmp_path / "data").mkdir()
    with rs.client(tmp_path / "data") as c:
        (result,) = run_scenarios(c, [leaky], admin_key=sup.ADMIN, agents_dir=agents, poll_s=0.05)
    assert not result.passed
    assert any(f.dimension == "leakage" and f.severity == "critical" for f in result.findings)
    assert summary_table([result])[1][1].startswith("critical:")


def test_hmctl_eval_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hmctl._cmd_eval import eval_group

    monkeypatch.chdir(rs.AGENTS.parent)
    monkeypatch.setenv("HIVEMIND_RUNNER", "local")
    monkeypatch.setenv("COLUMNS", "200")
    report = tmp_path / "report.json"
    args = ["run", "--runner", "local", "--allow-local-runner", "--scenario", "city_counts"]
    result = CliRunner().invoke(eval_group, [*args, "--json", str(report)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "city_counts" in result.output
    data = json.loads(report.read_text())
    assert data["schema"] == "hivemind.eval.v1"
    assert data["passed"] == 1
    assert data["results"][0]["findings"] == []
    bad = CliRunner().invoke(eval_group, ["run", "--scenario", "nope"])
    assert bad.exit_code == 2
    listing = CliRunner().invoke(eval_group, ["list"])
    assert listing.exit_code == 0
    assert listing.output.count("\n") == len(SCENARIOS)
