"""The conformance reports committed under docs/conformance/ stay true to their JSON and the suite.

Each report's Markdown must be exactly what ``conformance/tools/reports.py``
renders from its JSON, the stored summary must match the graded cases, the
README table must match every JSON, and the case ids must be the suite's
current ones for that mode and profile: when a case is added or renamed the
report is stale and the make target named in the failure regenerates it.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hivemind_conformance import Profile
from hivemind_conformance._report import SCHEMA, SCHEMA_VERSION, SUITE_VERSION
from hivemind_conformance._runner import select
from hivemind_conformance.cases import CLIENT_CASES, HUB_CASES

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "conformance"


def _tool() -> ModuleType:
    path = ROOT / "conformance" / "tools" / "reports.py"
    spec = importlib.util.spec_from_file_location("conformance_reports_tool", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


TOOL = _tool()
TARGETS = {target.stem: target for target in TOOL.TARGETS}


def _report(stem: str) -> dict:
    return json.loads((DOCS / f"{stem}.json").read_text(encoding="utf-8"))


def test_every_target_has_a_committed_report() -> None:
    missing = [s for s in TARGETS if not (DOCS / f"{s}.json").exists()]
    assert missing == [], f"missing reports {missing}: run make {TARGETS[missing[0]].make}"


@pytest.mark.parametrize("stem", sorted(TARGETS))
def test_report_parses_and_its_summary_matches_its_cases(stem: str) -> None:
    report = _report(stem)
    target = TARGETS[stem]
    assert report["schema"] == SCHEMA
    assert report["schema_version"] == SCHEMA_VERSION
    assert report["suite_version"] == SUITE_VERSION
    assert (report["mode"], report["profile"]) == (target.mode, target.profile)
    assert report["summary"] == {g: TOOL.summary_of(report)[g] for g in report["summary"]}
    assert sum(report["summary"].values()) == len(report["cases"])
    assert report["exit_status"] == (1 if report["summary"]["FAIL"] else 0)
    for case in report["cases"]:
        assert case["grade"] in TOOL.GRADES
        if case["grade"] in ("FAIL", "NON_STRICT"):
            assert case["expected"], case["id"]
            assert case["actual"], case["id"]


@pytest.mark.parametrize("stem", sorted(TARGETS))
def test_markdown_is_the_rendering_of_the_json(stem: str) -> None:
    target = TARGETS[stem]
    committed = (DOCS / f"{stem}.md").read_text(encoding="utf-8")
    assert committed == TOOL.render_markdown(_report(stem), target), (
        f"docs/conformance/{stem}.md differs from its JSON: run make {target.make}"
    )


@pytest.mark.parametrize("stem", sorted(TARGETS))
def test_report_was_produced_by_the_current_case_list(stem: str) -> None:
    target = TARGETS[stem]
    catalogue = HUB_CASES if target.mode == "hub" else CLIENT_CASES
    current = sorted(c.id for c in select(catalogue, Profile(target.profile)))
    recorded = sorted(c["id"] for c in _report(stem)["cases"])
    assert recorded == current, (
        f"docs/conformance/{stem}.json was made with another case list "
        f"(added {sorted(set(current) - set(recorded))}, "
        f"gone {sorted(set(recorded) - set(current))}): run make {target.make}"
    )


def test_readme_table_matches_the_reports() -> None:
    committed = (DOCS / "README.md").read_text(encoding="utf-8")
    assert TOOL.readme_table(committed) == TOOL.render_table(DOCS), (
        "the table in docs/conformance/README.md is stale: "
        "run python conformance/tools/reports.py render"
    )
    for stem in TARGETS:
        assert f"({stem}.md)" in committed


def test_the_markdown_shows_a_changed_grade(tmp_path: Path) -> None:
    stem = "hivemind-bus-client-0.4.4"
    report = _report(stem)
    flipped = next(c for c in report["cases"] if c["grade"] == "PASS")
    before = TOOL.render_markdown(report, TARGETS[stem])
    flipped.update(grade="FAIL", expected="x", actual="y")
    after = TOOL.render_markdown(report, TARGETS[stem])
    assert before != after
    assert f"### `{flipped['id']}` FAIL" in after
