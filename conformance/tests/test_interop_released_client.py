"""Client mode against the released hivemind-bus-client (0.4.x), unchanged.

The released client runs the client echo contract through
``conformance/tools/bus_client_echo.py`` in the interop virtualenv. A run of
every profile-L case must grade exactly as the committed report
``docs/conformance/hivemind-bus-client-0.4.4.json`` says (so the report
cannot drift from what the client does), and the profile-S checks of its
documented defects must FAIL (unknown envelope keys are fatal, uncompressed
WIRE-1 frames cannot be decoded).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio
from hivemind_conformance import Credentials, Grade, Profile, RunConfig
from hivemind_conformance._clientctx import client_context_factory, exec_launcher
from hivemind_conformance._runner import run_cases, select
from hivemind_conformance.cases import CLIENT_CASES

pytestmark = [pytest.mark.interop, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
ECHO = ROOT / "conformance" / "tools" / "bus_client_echo.py"
REPORT = ROOT / "docs" / "conformance" / "hivemind-bus-client-0.4.4.json"
CREDS = Credentials("released-client-key", "released-client-password")
DEFECTS = {
    "C16-S": Grade.FAIL,  # 0.4.x throws on unknown envelope keys
    "C09-S": Grade.FAIL,  # 0.4.x inflates every WIRE-1 frame
}


def _config(template: str, profile: Profile) -> RunConfig:
    return RunConfig(
        target=template,
        client=CREDS,
        profile=profile,
        timeout=60,
        reply_timeout=12,
        quiet_timeout=0.6,
        concurrency=2,
        seed=21,
    )


def _template(python: str) -> str:
    return f"{python} {ECHO} {{url}} {CREDS.access_key} {CREDS.password}"


async def test_released_client_grades_as_its_committed_report(interop_python: str) -> None:
    template = _template(interop_python)
    committed = {c["id"]: c["grade"] for c in json.loads(REPORT.read_text())["cases"]}
    cases = select(CLIENT_CASES, Profile.L)
    launch = client_context_factory(lambda url: exec_launcher(template, url))
    with trio.fail_after(240):
        results = await run_cases(cases, _config(template, Profile.L), launch)
    graded = {r.case.id: r.grade.value for r in results}
    assert graded == committed, "the released client no longer grades as its report says"
    assert graded["client/3.4/C02"] == "PASS"


async def test_released_client_fails_its_known_defects(interop_python: str) -> None:
    template = _template(interop_python)
    cases = select(CLIENT_CASES, Profile.S, list(DEFECTS))
    launch = client_context_factory(lambda url: exec_launcher(template, url))
    with trio.fail_after(120):
        results = await run_cases(cases, _config(template, Profile.S), launch)
    assert {r.case.check: r.grade for r in results} == DEFECTS
