"""`bench/hub/run.py --quick --only ours` runs end to end and prints figures that parse.

The benchmark starts a real ovos-messagebus (interop virtualenv), its bus
responder and our hub (``hmctl hub listen``) on loopback; this checks that
every phase produced a figure, not how large the figures are.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.interop, pytest.mark.slow]
QUICK = ("--quick", "--only", "ours", "--budget", "45")
ROW = re.compile(r"^(\d+ satellites?|hub CPU|password handshake|RSS per idle)")


def interop_python() -> str:
    path = os.environ.get("HIVEMIND_INTEROP_PYTHON") or str(
        ROOT / ".cache" / "interop-venv" / "bin" / "python"
    )
    if not (Path(path).parent / "ovos-messagebus").exists():
        if os.environ.get("CI") == "true":
            pytest.fail("HIVEMIND_INTEROP_PYTHON must point at the interop virtualenv in CI")
        pytest.skip("interop virtualenv (ovos-messagebus) not available")
    return path


def test_quick_run_against_our_hub(tmp_path: Path) -> None:
    py = interop_python()
    out = tmp_path / "figures.json"
    env = {**os.environ, "HIVEMIND_INTEROP_PYTHON": py}
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench/hub/run.py"), *QUICK, "--json", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    figures = json.loads(out.read_text())
    ours = figures["ours"]
    assert "error" not in ours, ours
    # Every request of every pass got its reply through the hub and the bus.
    for name in ("one_rtt", "one_rate", "many"):
        assert ours[name]["replies"] > 0, ours[name]
        assert ours[name]["replies"] == ours[name]["sent"], ours[name]
        assert ours[name]["rtt_p50_ms"] <= ours[name]["rtt_p99_ms"]
    assert ours["many"]["satellites"] == figures["plan"]["satellites"]
    assert ours["handshake"]["n"] == figures["plan"]["handshakes"]
    assert ours["many"]["hub_cpu_ms_per_msg"] > 0
    assert figures["bus_alone"]["replies"] > 0  # the no-hub ceiling was measured too
    for name in ("idle_small", "idle_big"):
        assert ours[name]["reached"] == ours[name]["target"], ours[name]
        assert ours[name]["rss_after_kib"] > 0
    assert ours["idle_big"]["handshake"] == "pre-shared key"
    # The printed table: one row per figure, ours as a number, the reference not run.
    rows = [line for line in done.stdout.splitlines() if ROW.match(line)]
    assert len(rows) == len(figures["table"]) == 12, done.stdout
    for line in rows:
        assert re.search(r"\s\d[\d,]*(\.\d+)?(/s| ms| KiB)\s+n/a \(not run\)", line), line
    by_metric = {row["metric"]: row for row in figures["table"]}
    assert all(row["ours"] is not None and row["reference"] is None for row in by_metric.values())
