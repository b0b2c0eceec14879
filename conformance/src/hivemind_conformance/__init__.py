"""hivemind-conformance: a graded conformance suite for HiveMind hubs and clients.

Point it at a hub (``hivemind-conformance hub URL ...``) or let it play a
scripted hub for a client (``hivemind-conformance client --exec ...``). Every
case quotes the requirement of ``docs/spec`` it checks and is graded PASS,
NON_STRICT, FAIL, INFO or SKIP. ``check_hub`` and ``check_client`` are the
same runs as library calls (no pytest needed).
"""

from __future__ import annotations

from ._case import Case, Grade, Level, Outcome, Profile
from ._config import Credentials, RunConfig
from ._runner import CaseResult, check_client, check_hub, run_cases

__all__ = [
    "Case",
    "CaseResult",
    "Credentials",
    "Grade",
    "Level",
    "Outcome",
    "Profile",
    "RunConfig",
    "check_client",
    "check_hub",
    "run_cases",
]
