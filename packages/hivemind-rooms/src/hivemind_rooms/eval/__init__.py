"""The room eval harness: room-native scenarios graded by deterministic rules.

``run_scenarios(client, SCENARIOS, admin_key=..., agents_dir=...)`` builds a
room per scenario on a live service (or an in-process app), asks, and grades
leakage (planted canaries), output shape, latency, tool calls, tokens and
cost. ``summary_table`` and ``dumps_report`` render the results; the
``hmctl eval run`` command is a thin shell over them.
"""

from __future__ import annotations

from ._grade import Finding, grade_run
from ._harness import EvalError, ScenarioResult, dumps_report, run_scenarios, summary_table
from ._local import local_service
from ._scenarios import SCENARIOS, Scenario, scenario_by_id

__all__ = [
    "SCENARIOS",
    "EvalError",
    "Finding",
    "Scenario",
    "ScenarioResult",
    "dumps_report",
    "grade_run",
    "local_service",
    "run_scenarios",
    "scenario_by_id",
    "summary_table",
]
