"""Client mode against the released hivemind-bus-client (0.4.x), unchanged.

The released client runs the client echo contract through
``interop/bus_client_echo.py`` in the interop virtualenv. Legacy-wire checks
pass; the suite catches its documented defects (unknown envelope keys are
fatal, uncompressed WIRE-1 frames cannot be decoded).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio
from hivemind_conformance import Credentials, Grade, Profile, RunConfig
from hivemind_conformance._clientctx import client_context_factory, exec_launcher
from hivemind_conformance._runner import run_cases, select
from hivemind_conformance.cases import CLIENT_CASES

pytestmark = [pytest.mark.interop, pytest.mark.slow]

ECHO = Path(__file__).parent / "interop" / "bus_client_echo.py"
CREDS = Credentials("released-client-key", "released-client-password")
EXPECTED = {
    "C01": Grade.PASS,
    "C02": Grade.PASS,
    "C05": Grade.PASS,
    "C16-S": Grade.FAIL,  # 0.4.x throws on unknown envelope keys
    "C09-S": Grade.FAIL,  # 0.4.x inflates every WIRE-1 frame
}


def _interop_python() -> str:
    default = Path(__file__).resolve().parents[2] / ".cache" / "interop-venv" / "bin" / "python"
    path = os.environ.get("HIVEMIND_INTEROP_PYTHON") or str(default)
    if not Path(path).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("HIVEMIND_INTEROP_PYTHON must point at the interop virtualenv in CI")
        pytest.skip("interop virtualenv not available")
    return path


async def test_released_client_passes_legacy_checks_and_fails_its_known_defects() -> None:
    template = f"{_interop_python()} {ECHO} {{url}} {CREDS.access_key} {CREDS.password}"
    config = RunConfig(
        target=template,
        client=CREDS,
        profile=Profile.S,
        timeout=40,
        reply_timeout=12,
        quiet_timeout=0.6,
        concurrency=2,
        seed=21,
    )
    cases = select(CLIENT_CASES, Profile.S, list(EXPECTED))
    launch = client_context_factory(lambda url: exec_launcher(template, url))
    with trio.fail_after(120):
        results = await run_cases(cases, config, launch)
    assert {r.case.check: r.grade for r in results} == EXPECTED
