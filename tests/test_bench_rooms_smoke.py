"""`bench/rooms/run.py --quick --only runs` measures room runs end to end and prints figures.

The benchmark starts a real room service in its own process on loopback,
publishes a room with the default deterministic agents, and lets 10
participants (own invite, own payer) ask through the bwrap runner for a few
seconds, then starts plain bwrap sandboxes for the baseline. This checks that
every run completed and that every figure was measured and printed, not how
large the figures are.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hivemind_rooms.pipeline import EngineConfig
from hivemind_rooms.runners import BwrapRunner

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
PARTICIPANTS = 10  # the benchmark's default
QUICK = ("--quick", "--only", "runs", "--runner", "bwrap")
NUMBER = r"(\d+(?:\.\d+)?)"


def require_bwrap() -> None:
    usable, detail = BwrapRunner().probe()
    if usable:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"bwrap must work in CI: {detail}")
    pytest.skip(f"bwrap not usable here: {detail}")


def row(stdout: str, label: str) -> tuple[float, int, int, float, float]:
    """The printed row ``label``: per minute, done, failed, p50 ms, p95 ms."""
    pattern = rf"^{re.escape(label)}\s+{NUMBER}\s+(\d+)\s+(\d+)\s+{NUMBER}\s+{NUMBER}"
    found = re.search(pattern, stdout, re.M)
    assert found, f"no row {label!r} in:\n{stdout}"
    per_min, done, failed, p50, p95 = found.groups()
    return float(per_min), int(done), int(failed), float(p50), float(p95)


def test_quick_room_runs_with_concurrent_participants(tmp_path: Path) -> None:
    require_bwrap()
    out = tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench/rooms/run.py"), *QUICK, "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    runs = json.loads(out.read_text())["runs"]
    assert runs["runner"] == "bwrap"
    assert runs["participants"] == PARTICIPANTS
    # The pool size printed is the one the engine reads from the same variables.
    assert runs["workers"] == EngineConfig.from_env().workers
    # The room pins a scope, a query and a mediator agent: three sandboxes per run.
    assert runs["stages_per_run"] == 3
    assert runs["warmup"]["completed"] == PARTICIPANTS
    pipeline = runs["pipeline"]
    assert pipeline["completed"] > 0, pipeline
    assert pipeline["failed"] == 0, pipeline["failures"]
    assert 0 < pipeline["p50_ms"] <= pipeline["p95_ms"]
    assert pipeline["per_minute"] > 0
    tasks = sorted(b["tasks"] for b in runs["baselines"])
    assert tasks == sorted({PARTICIPANTS, min(PARTICIPANTS, runs["workers"])})
    for baseline in runs["baselines"]:
        assert baseline["completed"] > 0, baseline
        assert baseline["failed"] == 0, baseline["failures"]
        assert baseline["ratio"] > 0
        assert baseline["ratio"] == pytest.approx(
            pipeline["per_minute"] / baseline["per_minute"], rel=0.01
        )
    # The printed table holds the same figures.
    stdout = done.stdout
    assert f"engine worker pool: {runs['workers']} runs at once" in stdout, stdout
    per_min, completed, failed, p50, p95 = row(
        stdout, f"bwrap: room runs, {PARTICIPANTS} participants"
    )
    assert (completed, failed) == (pipeline["completed"], 0)
    assert per_min == pytest.approx(pipeline["per_minute"], abs=0.1)
    assert (p50, p95) == (pipeline["p50_ms"], pipeline["p95_ms"])
    for baseline in runs["baselines"]:
        per_min, completed, _, _, _ = row(stdout, baseline["label"])
        assert completed == baseline["completed"]
        assert per_min == pytest.approx(baseline["per_minute"], abs=0.1)
    if runs["participants"] > runs["workers"]:
        pool = runs["pool_worker_ms"]
        assert pool["plain_starts_ms"] > 0
        # At most `workers` runs hold sandboxes at once, so the stage time the
        # engine metered per run cannot exceed one run's share of the workers' time.
        assert 0 < pool["in_stages_ms"] <= pool["per_run_ms"] + 1
        assert re.search(r"^worker time per run with the pool saturated: \d+ ms", stdout, re.M)
