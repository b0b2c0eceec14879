"""The command line: listing, hub mode with JSON and JUnit output, client --exec mode."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import trio
from click.testing import CliRunner
from hivemind_conformance.cli import main
from hivemind_conformance.reference_hub import serve_reference_hub
from hivemind_conformance.selfcheck import TEST, reference_hub_config

SUITE = [sys.executable, "-m", "hivemind_conformance"]


def test_list_selects_by_profile_and_pattern() -> None:
    runner = CliRunner()
    result = runner.invoke(
        main, ["hub", "ws://127.0.0.1:9", "--access-key", "k", "--password", "p", "--list",
               "--profile", "L"],
    )  # fmt: skip
    assert result.exit_code == 0
    assert "hub/3.4/H07" in result.output
    assert "hub/3.5/H13" not in result.output  # profile S
    result = runner.invoke(
        main, ["client", "--access-key", "k", "--password", "p", "--exec", "x {url}", "--list",
               "--cases", "client/3.5"],
    )  # fmt: skip
    assert result.exit_code == 0
    assert sorted(line.split()[0] for line in result.output.splitlines()) == [
        "client/3.5/C07",
        "client/3.5/C08",
    ]


def test_client_mode_needs_exec_or_port() -> None:
    result = CliRunner().invoke(main, ["client", "--access-key", "k", "--password", "p"])
    assert result.exit_code == 2


async def _hub_run(tmp_path: Path, password: str) -> tuple[int, Path, Path]:
    report, junit = tmp_path / "report.json", tmp_path / "junit.xml"
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_reference_hub, reference_hub_config())
            argv = [
                *SUITE, "hub", f"ws://127.0.0.1:{port}", "--access-key", TEST.access_key,
                "--password", password, "--cases", "hub/3", "--profile", "S", "--seed", "4",
                "--json", str(report), "--junit", str(junit), "--handshake-timeout", "3",
            ]  # fmt: skip
            done = await trio.run_process(argv, check=False, capture_stdout=True)
            nursery.cancel_scope.cancel()
    return done.returncode, report, junit


async def test_hub_mode_reports_and_exit_status(tmp_path: Path) -> None:
    code, report_path, junit_path = await _hub_run(tmp_path, TEST.password)
    assert code == 0
    report = json.loads(report_path.read_text())
    assert report["schema"] == "hivemind-conformance/report"
    assert report["schema_version"] == 1
    assert report["seed"] == 4
    assert report["summary"]["FAIL"] == 0
    assert report["summary"]["PASS"] >= 15
    ids = [case["id"] for case in report["cases"]]
    assert all(i.startswith("hub/3") for i in ids)
    assert {"requirement", "level", "grade", "wire_log"} <= set(report["cases"][0])
    suite = ET.parse(junit_path).getroot().find("testsuite")
    assert suite is not None
    assert suite.get("failures") == "0"
    assert int(suite.get("tests", "0")) == len(ids)


async def test_hub_mode_fails_with_a_wrong_password(tmp_path: Path) -> None:
    code, report_path, junit_path = await _hub_run(tmp_path, "not-the-password")
    assert code == 1
    report = json.loads(report_path.read_text())
    failed = {c["id"] for c in report["cases"] if c["grade"] == "FAIL"}
    assert "hub/3.4/H07" in failed
    assert all(c["expected"] and c["actual"] for c in report["cases"] if c["grade"] == "FAIL")
    suite = ET.parse(junit_path).getroot().find("testsuite")
    assert suite is not None
    assert int(suite.get("failures", "0")) == len(failed)


async def test_client_exec_mode_launches_the_testee_per_case(tmp_path: Path) -> None:
    report = tmp_path / "client.json"
    testee = " ".join(
        [sys.executable, "-m", "hivemind_conformance.testee", "{url}",
         "--access-key", TEST.access_key, "--password", TEST.password]
    )  # fmt: skip
    argv = [
        *SUITE, "client", "--access-key", TEST.access_key, "--password", TEST.password,
        "--exec", testee, "--cases", "client/1.1", "--cases", "client/3.4", "--cases",
        "client/3.8/C05", "--json", str(report), "--seed", "9",
    ]  # fmt: skip
    with trio.fail_after(90):
        done = await trio.run_process(argv, check=False, capture_stdout=True)
    assert done.returncode == 0, done.stdout.decode()[-2000:]
    grades = {c["id"]: c["grade"] for c in json.loads(report.read_text())["cases"]}
    assert grades == {
        "client/1.1/C01": "PASS",
        "client/3.4/C02": "PASS",
        "client/3.4/C03": "PASS",
        "client/3.4/C04": "PASS",
        "client/3.8/C05": "PASS",
    }
