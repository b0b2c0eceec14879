"""Grading, exit status and the JSON / JUnit renderings, on hand-made results."""

from __future__ import annotations

import io
import json
from pathlib import Path

from hivemind_conformance import Case, CaseResult, Grade, Level, Outcome, Profile
from hivemind_conformance._peer import LogEntry
from hivemind_conformance._report import (
    exit_status,
    render_console,
    to_json,
    to_junit,
    write_json,
    write_junit,
)
from hivemind_conformance._runner import failed_grade, grade
from rich.console import Console


async def _noop(ctx: object) -> Outcome:
    return Outcome()


def _case(check: str, level: Level) -> Case:
    return Case(f"hub/3.4/{check}", "3.4", check, f"A hub {level.value} do {check}.", level,
                Profile.L, _noop)  # fmt: skip


def _results() -> list[CaseResult]:
    log = [LogEntry(0.5, "<-", "text", "(2) {}")]
    return [
        CaseResult(_case("A", Level.MUST), Grade.PASS, note="fine"),
        CaseResult(_case("B", Level.SHOULD), Grade.NON_STRICT, expected="x", actual="y", log=log),
        CaseResult(_case("C", Level.INFO), Grade.INFO, note="seen"),
        CaseResult(_case("D", Level.MUST), Grade.SKIP, note="needs admin"),
    ]


def test_grades_follow_the_level() -> None:
    assert failed_grade(_case("A", Level.MUST)) is Grade.FAIL
    assert failed_grade(_case("A", Level.SHOULD)) is Grade.NON_STRICT
    assert failed_grade(_case("A", Level.INFO)) is Grade.INFO
    assert grade(_case("A", Level.MUST), Outcome(info=True)) is Grade.INFO
    assert grade(_case("A", Level.MUST), None) is Grade.PASS


def test_non_strict_fails_only_under_strict() -> None:
    results = _results()
    assert exit_status(results, strict=False) == 0
    assert exit_status(results, strict=True) == 1
    results.append(CaseResult(_case("E", Level.MUST), Grade.FAIL, expected="a", actual="b"))
    assert exit_status(results, strict=False) == 1


def test_json_and_junit(tmp_path: Path) -> None:
    results = _results()
    report = to_json(results, mode="hub", target="ws://x", profile="S", seed=3, strict=True)
    assert report["summary"] == {"PASS": 1, "NON_STRICT": 1, "FAIL": 0, "INFO": 1, "SKIP": 1}
    assert report["exit_status"] == 1
    write_json(tmp_path / "r.json", report)
    assert json.loads((tmp_path / "r.json").read_text())["cases"][1]["wire_log"]
    tree = to_junit(results, suite="s", strict=True)
    write_junit(tmp_path / "j.xml", tree)
    suite = tree.getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("4", "1", "1")
    lenient = to_junit(results, suite="s", strict=False).getroot().find("testsuite")
    assert lenient is not None
    assert lenient.get("failures") == "0"


def test_console_shows_failure_details() -> None:
    out = io.StringIO()
    render_console(Console(file=out, width=200), _results(), title="t", seed=3)
    text = out.getvalue()
    assert "expected: x" in text
    assert "actual: y" in text
    assert "needs admin" in text
    assert "seed 3" in text
