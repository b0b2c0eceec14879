"""Run scenarios against a room service over its HTTP API and collect graded results.

The harness needs an HTTP client with ``get``/``post`` (an ``httpx.Client``
for a live service, or Starlette's ``TestClient`` for an in-process app) and
the operator's admin key: each scenario provisions its own tenant, tables,
agents (packed from the ``agents/`` directory with the shared SDK), vault
items and room, then asks as the owner and polls the run to its end.

Theory of operation (attestation): a :class:`Verifier` is required. Before
the first request that carries a key, ``check_service`` verifies the service
(a fresh nonce, the caller's trust rules); if it fails, nothing is sent and
:class:`VerificationError` propagates. After each run ends, ``check_run``
verifies its signed run attestation against what the harness knows (room,
owner key, the exact prompt, the output received); a failure is a critical
``attestation`` finding, so the scenario fails however good its output looks.
The harness holds no verification code of its own: the client that asks
rooms for real (``hmctl``) supplies it, so the eval checks what users check.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol, final

from ..credentials import new_room_id
from ..manifest import OwnerKey, build_manifest, sign_manifest
from ._grade import Finding, grade_run
from ._scenarios import Scenario

__all__ = [
    "EvalError",
    "ScenarioResult",
    "VerificationError",
    "Verifier",
    "dumps_report",
    "run_scenarios",
    "summary_table",
]

_FINAL = ("completed", "failed")


class EvalError(RuntimeError):
    """The service refused a setup step (the message names which)."""


class VerificationError(EvalError):
    """The service's attestation or a run's signed attestation did not verify."""


class Verifier(Protocol):
    """Checks the service before any key is sent, and every run's attestation."""

    def check_service(self) -> str:
        """Verify the service with a fresh nonce; return its label (e.g. ``attested``).

        Raises:
            VerificationError: the service did not verify.
        """
        ...

    def check_run(
        self,
        run: Mapping[str, Any],
        *,
        room_id: str,
        owner_pubkey_b64: str,
        bearer: str,
        prompt: str,
    ) -> None:
        """Verify a finished run's signed attestation.

        Args:
            run: the run object (``GET /v1/runs/{id}``).
            room_id: the room asked.
            owner_pubkey_b64: the key the room's manifest was signed with.
            bearer: the owner's key (to read the room's attestation view).
            prompt: the exact question sent.

        Raises:
            VerificationError: the attestation is missing or does not match.
        """
        ...


@final
@dataclasses.dataclass(frozen=True)
class ScenarioResult:
    """The graded outcome of one scenario."""

    scenario: str
    status: str
    passed: bool
    findings: tuple[Finding, ...]
    duration_s: float
    llm_calls: int
    total_tokens: int
    cost_micro_usd: int
    tool_calls: dict[str, dict[str, int]]
    run_id: str
    attestation: str = "not checked"

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        data = dataclasses.asdict(self)
        data["findings"] = [f.to_dict() for f in self.findings]
        return data


def _pack_module(agents_dir: Path) -> Any:
    spec = importlib.util.spec_from_file_location("hivemind_agents_pack", agents_dir / "pack.py")
    if spec is None or spec.loader is None:
        raise EvalError(f"no pack.py in {agents_dir}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _ok(response: Any, step: str) -> Any:
    if response.status_code != 200:
        raise EvalError(f"{step} failed: HTTP {response.status_code} {response.text[:200]}")
    return response.json()


class _Session:
    def __init__(self, client: Any, admin_key: str, agents_dir: Path, verifier: Verifier) -> None:
        self.client, self.admin, self.agents_dir = client, admin_key, agents_dir
        self.verifier = verifier
        self.pack = _pack_module(agents_dir)

    def auth(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def tenant(self, name: str) -> dict[str, Any]:
        body = {"name": name, "allow_duplicate_name": True}
        return _ok(
            self.client.post("/v1/admin/tenants", json=body, headers=self.auth(self.admin)),
            "tenant",
        )

    def sql(self, key: str, sql: str, params: Iterable[Any] = ()) -> None:
        body = {"sql": sql, "params": list(params)}
        _ok(self.client.post("/v1/tenant/sql", json=body, headers=self.auth(key)), "owner SQL")

    def agent(self, key: str, name: str, kind: str) -> str:
        archive = self.pack.pack_agent(self.agents_dir / name)
        files = {"archive": ("agent.tar.gz", archive, "application/gzip")}
        data = {"name": name, "agent_type": kind}
        r = self.client.post("/v1/room-agents", data=data, files=files, headers=self.auth(key))
        return str(_ok(r, f"upload {name}")["agent_id"])

    def manifest(self, s: Scenario, tenant: dict[str, Any], owner: OwnerKey) -> dict[str, Any]:
        key = tenant["api_key"]
        ids = {role: self.agent(key, name, role) for role, name in s.agents.items()}
        manifest = build_manifest(
            room_id=new_room_id(), tenant_id=tenant["tenant_id"],
            owner_pubkey_b64=owner.public_key_b64(), scope_agent_id=ids["scope"],
            query_agent_id=ids["query"], mediator_agent_id=ids.get("mediator", ""),
            query_mode="fixed", scope_visibility="inspectable", query_visibility="inspectable",
            policy=s.policy, llm_providers=tuple(s.providers),
            allowed_tables=list(s.allowed_tables), created_at=int(time.time()),
        )  # fmt: skip
        return manifest

    def run(
        self, s: Scenario, poll: float, timeout: float, clock: Callable[[], float]
    ) -> ScenarioResult:
        tenant = self.tenant(f"eval-{s.id}")
        key = tenant["api_key"]
        for statement, rows in s.tables.values():
            self.sql(key, statement)
            table = statement.split()[2]
            for row in rows:
                marks = ", ".join("?" for _ in row)
                self.sql(key, f"INSERT INTO {table} VALUES ({marks})", row)
        owner = OwnerKey.generate()
        envelope = sign_manifest(self.manifest(s, tenant, owner), owner)
        room = _ok(
            self.client.post("/v1/rooms", json={"envelope": envelope}, headers=self.auth(key)),
            "room",
        )
        for text in s.vault_items:
            r = self.client.post(
                f"/v1/rooms/{room['room_id']}/data", json={"text": text}, headers=self.auth(key)
            )
            _ok(r, "vault item")
        started = clock()
        r = self.client.post(
            f"/v1/rooms/{room['room_id']}/runs", json={"query": s.query}, headers=self.auth(key)
        )
        run_id = _ok(r, "run submission")["run_id"]
        run = self._wait(run_id, key, poll, timeout, clock)
        duration = clock() - started
        if run["status"] not in _FINAL:
            return _result(s, run, duration, "run did not finish", [])
        try:
            self.verifier.check_run(
                run,
                room_id=room["room_id"],
                owner_pubkey_b64=owner.public_key_b64(),
                bearer=key,
                prompt=s.query,
            )
        except VerificationError as exc:
            failed = Finding("attestation", "critical", f"run attestation not verified: {exc}")
            return _result(s, run, duration, "failed", [failed])
        return _result(s, run, duration, "verified", [])

    def _wait(
        self, run_id: str, key: str, poll: float, timeout: float, clock: Callable[[], float]
    ) -> dict[str, Any]:
        deadline = clock() + timeout
        while True:
            run = _ok(self.client.get(f"/v1/runs/{run_id}", headers=self.auth(key)), "run status")
            if run["status"] in ("completed", "failed") or clock() > deadline:
                return run
            time.sleep(poll)


def _result(
    s: Scenario, run: dict[str, Any], duration: float, attestation: str, first: list[Finding]
) -> ScenarioResult:
    findings = first + grade_run(s, run, duration)
    usage = run.get("usage") or {}
    stages = usage.get("stages") or {}
    return ScenarioResult(
        scenario=s.id,
        status=str(run["status"]),
        passed=not findings,
        findings=tuple(findings),
        duration_s=round(duration, 3),
        llm_calls=int(usage.get("calls") or 0),
        total_tokens=int(usage.get("total_tokens") or 0),
        cost_micro_usd=int(run.get("billing_cost_micro_usd") or 0),
        tool_calls={k: dict(v.get("tool_call_counts") or {}) for k, v in stages.items()},
        run_id=str(run["run_id"]),
        attestation=attestation,
    )


def run_scenarios(
    client: Any,
    scenarios: Iterable[Scenario],
    *,
    admin_key: str,
    agents_dir: Path,
    verifier: Verifier,
    poll_s: float = 0.1,
    timeout_s: float = 600.0,
    clock: Callable[[], float] = time.monotonic,
) -> list[ScenarioResult]:
    """Verify the service, then run and grade every scenario, one after the other.

    Args:
        client: an HTTP client of the service (``get``/``post``).
        scenarios: what to run.
        admin_key: the operator's key (sent only after the service verified).
        agents_dir: the ``agents/`` directory (agents and ``pack.py``).
        verifier: checks the service first and each run's signed attestation.
        poll_s: seconds between run status polls.
        timeout_s: how long one run may take.
        clock: monotonic seconds.

    Raises:
        VerificationError: the service did not verify (nothing was sent).
        EvalError: a setup step was refused (bad admin key, missing agent...).
    """
    verifier.check_service()
    session = _Session(client, admin_key, agents_dir, verifier)
    return [session.run(s, poll_s, timeout_s, clock) for s in scenarios]


def summary_table(results: Iterable[ScenarioResult]) -> list[list[str]]:
    """Rows of the summary table (header first): one row per scenario, never an average."""
    rows = [[
        "scenario", "result", "status", "attestation", "seconds", "llm calls", "tokens",
        "cost µ$", "findings",
    ]]  # fmt: skip
    for r in results:
        worst = "critical" if any(f.severity == "critical" for f in r.findings) else "fail"
        verdict = "pass" if r.passed else f"{worst}:{len(r.findings)}"
        rows.append([
            r.scenario, verdict, r.status, r.attestation, f"{r.duration_s:.2f}", str(r.llm_calls),
            str(r.total_tokens), str(r.cost_micro_usd), "; ".join(f.message for f in r.findings),
        ])  # fmt: skip
    return rows


def dumps_report(results: Iterable[ScenarioResult]) -> str:
    """The JSON report: schema, results and counts."""
    items = [r.to_dict() for r in results]
    report = {
        "schema": "hivemind.eval.v1",
        "results": items,
        "passed": sum(1 for r in items if r["passed"]),
        "failed": sum(1 for r in items if not r["passed"]),
    }
    return json.dumps(report, indent=2, sort_keys=True)
