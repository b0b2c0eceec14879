"""The room eval harness: room-native scenarios graded by deterministic rules.

``run_scenarios(client, SCENARIOS, admin_key=..., agents_dir=..., verifier=...)``
verifies the service, builds a room per scenario on it, asks, verifies each
run's signed attestation and grades leakage (planted canaries), output
shape, latency, tool calls, tokens and cost. ``summary_table`` and
``dumps_report`` render the results; ``hmctl eval run`` is a thin shell over
them and supplies the verifier (the same checks ``hmctl room ask`` makes).
"""

from __future__ import annotations

from ._grade import Finding, grade_run
from ._harness import (
    EvalError,
    ScenarioResult,
    VerificationError,
    Verifier,
    dumps_report,
    run_scenarios,
    summary_table,
)
from ._local import local_service
from ._scenarios import SCENARIOS, Scenario, scenario_by_id

__all__ = [
    "SCENARIOS",
    "EvalError",
    "Finding",
    "Scenario",
    "ScenarioResult",
    "VerificationError",
    "Verifier",
    "dumps_report",
    "grade_run",
    "local_service",
    "run_scenarios",
    "scenario_by_id",
    "summary_table",
]
