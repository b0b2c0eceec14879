"""The eval harness: deterministic graders, scenarios on a real service, ``hmctl eval``.

Scenarios run against the real room service on 127.0.0.1 port 0 (hypercorn
in a thread) with the local runner. The service is verified before any key
goes to it and every run's signed attestation is checked with hmctl's own
verifier; ``Tamper`` is an attacker between the harness and the service (a
real transport that rewrites one field of an answer), not a stand-in for it.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import importlib.util
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from hivemind_rooms.attestation import load_or_create_dev_provider
from hivemind_rooms.eval import (
    SCENARIOS,
    VerificationError,
    grade_run,
    local_service,
    run_scenarios,
    scenario_by_id,
    summary_table,
)
from hivemind_rooms.settings import Settings
from hmctl.client import LocalState, TrustOptions
from hmctl.client.evaluate import ScenarioVerifier

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


class Tamper(httpx.BaseTransport):
    """Forwards every request; appends a blank line to a finished run's output."""

    def __init__(self) -> None:
        self.real = httpx.HTTPTransport()
        self.requests: list[str] = []
        self.tampered = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(f"{request.method} {request.url.path}")
        response = self.real.handle_request(request)
        if request.method != "GET" or not request.url.path.startswith("/v1/runs/"):
            return response
        body = json.loads(response.read())
        if body.get("status") == "completed":
            body["output"] = str(body.get("output") or "") + "\n"
            self.tampered += 1
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        headers.pop("content-encoding", None)
        return httpx.Response(response.status_code, headers=headers, json=body)

    def close(self) -> None:
        self.real.close()


@contextlib.contextmanager
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, LocalState]]:
    """The real service on loopback, and a client state trusting its dev root."""
    monkeypatch.setenv("HIVEMIND_RUNNER", "local")
    monkeypatch.setenv("HIVEMIND_ALLOW_LOCAL_RUNNER", "1")
    data = tmp_path / "service"
    data.mkdir()
    settings = Settings(data_dir=data, admin_key=sup.ADMIN, host="127.0.0.1", port=0)
    with local_service(settings) as url:
        state = LocalState(tmp_path / "client")
        state.add_dev_root(load_or_create_dev_provider(data, "{}").root_public_key_b64())
        yield url, state


def verifier(url: str, state: LocalState) -> ScenarioVerifier:
    return ScenarioVerifier(url, state, TrustOptions(assume_yes=True))


def tenants(url: str) -> list[Any]:
    answer = httpx.get(f"{url}/v1/admin/tenants", headers={"Authorization": f"Bearer {sup.ADMIN}"})
    assert answer.status_code == 200
    return answer.json()["tenants"]


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


def test_built_in_scenarios_pass_on_the_default_agents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with served(tmp_path, monkeypatch) as (url, state), httpx.Client(base_url=url) as c:
        results = run_scenarios(
            c, SCENARIOS, admin_key=sup.ADMIN, agents_dir=rs.AGENTS,
            verifier=verifier(url, state), poll_s=0.05,
        )  # fmt: skip
    assert [r.scenario for r in results] == [s.id for s in SCENARIOS]
    assert all(r.passed for r in results), [r.to_dict() for r in results if not r.passed]
    assert {r.attestation for r in results} == {"verified"}
    assert results[0].tool_calls["query"]["execute_sql"] == 1
    rows = summary_table(results)
    assert rows[0][0] == "scenario"
    assert [row[1] for row in rows[1:]] == ["pass"] * len(SCENARIOS)


def test_a_leaky_scope_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    agents = tmp_path / "agents"
    shutil.copytree(rs.AGENTS, agents, ignore=shutil.ignore_patterns("__pycache__"))
    (agents / "leaky-scope").mkdir()
    shutil.copy(agents / "default-scope" / "Dockerfile", agents / "leaky-scope" / "Dockerfile")
    (agents / "leaky-scope" / "main.py").write_text(PASS_THROUGH_SCOPE)
    base = scenario_by_id("hidden_column_probe")
    leaky = dataclasses.replace(
        base, agents={**base.agents, "scope": "leaky-scope", "mediator": "redact-mediator"}
    )
    with served(tmp_path, monkeypatch) as (url, state), httpx.Client(base_url=url) as c:
        (result,) = run_scenarios(
            c, [leaky], admin_key=sup.ADMIN, agents_dir=agents, verifier=verifier(url, state),
            poll_s=0.05,
        )  # fmt: skip
    assert not result.passed
    assert result.attestation == "verified"  # the leak is real: the service did produce it
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
    assert data["results"][0]["attestation"] == "verified"
    bad = CliRunner().invoke(eval_group, ["run", "--scenario", "nope"])
    assert bad.exit_code == 2
    listing = CliRunner().invoke(eval_group, ["list"])
    assert listing.exit_code == 0
    assert listing.output.count("\n") == len(SCENARIOS)


def test_a_run_whose_attestation_does_not_verify_fails_its_scenario(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tamper = Tamper()
    scenario = scenario_by_id("city_counts")
    with (
        served(tmp_path, monkeypatch) as (url, state),
        httpx.Client(base_url=url, transport=tamper, timeout=60) as c,
    ):
        (result,) = run_scenarios(
            c, [scenario], admin_key=sup.ADMIN, agents_dir=rs.AGENTS,
            verifier=verifier(url, state), poll_s=0.05,
        )  # fmt: skip
    assert tamper.tampered >= 1
    assert not result.passed
    assert result.attestation == "failed"
    # the output still passes every grader: the attestation alone fails the scenario
    assert [(f.dimension, f.severity) for f in result.findings] == [("attestation", "critical")]
    assert "output" in result.findings[0].message
    assert summary_table([result])[1][1] == "critical:1"
    assert summary_table([result])[1][3] == "failed"


def test_an_unverified_service_gets_no_key_and_no_scenario(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Tamper()
    with served(tmp_path, monkeypatch) as (url, _):
        stranger = LocalState(tmp_path / "stranger")
        stranger.add_dev_root(base64.b64encode(os.urandom(32)).decode())
        unapproved = LocalState(tmp_path / "unapproved")
        unapproved.add_dev_root(load_or_create_dev_provider(tmp_path / "service", "{}")
                                .root_public_key_b64())  # fmt: skip
        checks = [
            (verifier(url, stranger), "service attestation rejected"),
            (ScenarioVerifier(url, unapproved, TrustOptions()), "is not approved"),
        ]
        for check, reason in checks:
            with (
                httpx.Client(base_url=url, transport=recorder) as c,
                pytest.raises(VerificationError) as caught,
            ):
                run_scenarios(c, SCENARIOS, admin_key=sup.ADMIN, agents_dir=rs.AGENTS,
                              verifier=check)  # fmt: skip
            assert reason in str(caught.value)
            assert "hmctl -y trust attest" in str(caught.value)
        assert recorder.requests == []
        assert tenants(url) == []


def test_hmctl_eval_refuses_an_unverified_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hmctl._cmd_eval import eval_group

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.chdir(rs.AGENTS.parent)
    with served(tmp_path, monkeypatch) as (url, _):
        args = ["run", "--service", url, "--admin-key", sup.ADMIN, "--scenario", "city_counts"]
        refused = CliRunner().invoke(eval_group, args)
        assert refused.exit_code == 11, refused.output
        assert "no trusted dev attestation root" in refused.output
        assert "no key and no scenario were sent" in refused.output
        assert tenants(url) == []
