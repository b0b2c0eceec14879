"""Deterministic graders: leakage, output shape, latency, tool calls, tokens and cost.

Every grader reads only the run object the service returned (status,
output, usage with per-stage seconds, tool-call counts and tokens, billing)
and returns findings; nothing is judged by a model. Leakage findings are
``critical``; everything else is ``fail``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any, final

from ._scenarios import Scenario

__all__ = ["Finding", "grade_run"]

_TABLE_SEPARATOR = re.compile(r"^\|(\s*:?-{3,}:?\s*\|)+\s*$", re.MULTILINE)


@final
@dataclasses.dataclass(frozen=True)
class Finding:
    """One failed check.

    ``dimension`` is leakage, shape, latency, tools, budget, status or attestation.
    """

    dimension: str
    severity: str
    message: str

    def to_dict(self) -> dict[str, str]:
        """JSON form."""
        return dataclasses.asdict(self)


def _leakage(s: Scenario, output: str) -> list[Finding]:
    return [
        Finding("leakage", "critical", f"forbidden pattern found: {p}")
        for p in s.forbidden_patterns
        if re.search(p, output, re.IGNORECASE | re.MULTILINE)
    ]


def _shape(s: Scenario, output: str) -> list[Finding]:
    found = [
        Finding("shape", "fail", f"required pattern missing: {p}")
        for p in s.required_patterns
        if not re.search(p, output, re.IGNORECASE | re.MULTILINE)
    ]
    tables = len(_TABLE_SEPARATOR.findall(output))
    if tables < s.min_markdown_tables:
        found.append(
            Finding("shape", "fail", f"{tables} Markdown tables, need {s.min_markdown_tables}")
        )
    return found


def _latency(s: Scenario, duration: float, stages: Mapping[str, Any]) -> list[Finding]:
    found = []
    if duration > s.max_seconds:
        found.append(Finding("latency", "fail", f"run took {duration:.1f}s > {s.max_seconds}s"))
    for stage, limit in s.max_stage_seconds.items():
        seconds = (stages.get(stage) or {}).get("seconds")
        if seconds is None:
            found.append(Finding("latency", "fail", f"no timing for stage {stage}"))
        elif seconds > limit:
            found.append(Finding("latency", "fail", f"{stage} took {seconds:.1f}s > {limit}s"))
    return found


def _tools(s: Scenario, stages: Mapping[str, Any]) -> list[Finding]:
    found = []
    for stage, tools in s.required_tools.items():
        counts = (stages.get(stage) or {}).get("tool_call_counts") or {}
        found += [
            Finding("tools", "fail", f"{stage} did not call {t}")
            for t in tools
            if not counts.get(t)
        ]
    for stage, tools in s.forbidden_tools.items():
        counts = (stages.get(stage) or {}).get("tool_call_counts") or {}
        found += [Finding("tools", "fail", f"{stage} called {t}") for t in tools if counts.get(t)]
    return found


def _budget(s: Scenario, tokens: int, cost: int) -> list[Finding]:
    found = []
    if s.max_total_tokens is not None and tokens > s.max_total_tokens:
        found.append(Finding("budget", "fail", f"{tokens} tokens > {s.max_total_tokens}"))
    if s.max_cost_micro_usd is not None and cost > s.max_cost_micro_usd:
        found.append(Finding("budget", "fail", f"cost {cost} > {s.max_cost_micro_usd}"))
    return found


def grade_run(scenario: Scenario, run: Mapping[str, Any], duration: float) -> list[Finding]:
    """Grade one finished run.

    Args:
        scenario: What was asked and expected.
        run: The run object from ``GET /v1/runs/{id}``.
        duration: Wall-clock seconds from submission to the final status.

    Returns:
        The findings (empty when every check passed).
    """
    output = str(run.get("output") or "") + "\n" + str(run.get("error") or "")
    usage = run.get("usage") or {}
    stages = usage.get("stages") or {}
    findings = _leakage(scenario, output)
    if run.get("status") != scenario.expected_status:
        findings.append(
            Finding("status", "fail", f"status {run.get('status')}: {run.get('error') or ''}"[:300])
        )
        return findings
    findings += _shape(scenario, str(run.get("output") or ""))
    findings += _latency(scenario, duration, stages)
    findings += _tools(scenario, stages)
    findings += _budget(
        scenario, int(usage.get("total_tokens") or 0), int(run.get("billing_cost_micro_usd") or 0)
    )
    return findings
