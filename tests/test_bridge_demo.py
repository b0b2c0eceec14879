"""`make demo` runs end to end and prints every verification it claims.

The demo is the README's first command; this runs it exactly as a newcomer
would (through make, which also checks the install) and checks its output.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_make_demo_verifies_and_prints_the_answer() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    done = subprocess.run(
        ["make", "--no-print-directory", "demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert re.search(r"^demo: room service listening on http://127\.0\.0\.1:\d+ "
                     r"\(runner: (bwrap|docker)\)$", out, re.M), out  # fmt: skip
    assert re.search(r"^demo: hub hub-[0-9a-f]+ on port \d+ linked to the room service$", out, re.M)
    assert re.search(r"^demo: room verified: manifest [0-9a-f]{16}\.\.\. signed by the owner$",
                     out, re.M)  # fmt: skip
    assert re.search(r"^demo: attestation verified: dev \(unattested\)", out, re.M)
    assert re.search(r"^demo: run attestation verified: run [0-9a-f]+ \(completed\)$", out, re.M)
    answer = out.split("demo: answer:\n", 1)[1]
    assert "| Ann | Lisbon |" in answer
    assert "Porto" not in answer
    assert "example.org" not in answer
    assert re.search(r"^demo: the hub relayed \d+ messages; none held the question or the answer$",
                     out, re.M)  # fmt: skip
    assert "FAILED" not in out
