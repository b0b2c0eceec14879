"""Reports: a Rich console tree, JSON with a versioned schema, JUnit XML.

JSON schema ``hivemind-conformance/report`` version 1 (stable; new keys may be
added, existing ones never change meaning)::

    {"schema": "hivemind-conformance/report", "schema_version": 1,
     "suite_version": str, "mode": "hub"|"client", "target": str,
     "profile": "L"|"S"|"N", "seed": int, "strict": bool,
     "summary": {"PASS": int, "NON_STRICT": int, "FAIL": int, "INFO": int, "SKIP": int},
     "exit_status": int,
     "cases": [{"id", "section", "title", "requirement", "level", "profile",
                "grade", "note", "expected", "actual", "duration_s",
                "wire_log": [str, ...]}]}
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from rich.console import Console
from rich.tree import Tree

from ._case import Grade
from ._runner import CaseResult

SCHEMA: Final = "hivemind-conformance/report"
SCHEMA_VERSION: Final = 1
SUITE_VERSION: Final = "0.1.0"
LOG_TAIL: Final = 12
_MARKS: Final = {
    Grade.PASS: "[green]✔[/]",
    Grade.NON_STRICT: "[yellow]![/]",
    Grade.FAIL: "[red]×[/]",  # noqa: RUF001 (the cross mark is deliberate)
    Grade.INFO: "[blue]i[/]",
    Grade.SKIP: "[dim]-[/]",
}


def summary(results: Sequence[CaseResult]) -> dict[str, int]:
    """Counts per grade (every grade present)."""
    counts = Counter(r.grade for r in results)
    return {g.value: counts.get(g, 0) for g in Grade}


def exit_status(results: Sequence[CaseResult], strict: bool) -> int:
    """0 when nothing failed (NON_STRICT fails too under ``strict``), else 1."""
    bad = {Grade.FAIL, Grade.NON_STRICT} if strict else {Grade.FAIL}
    return 1 if any(r.grade in bad for r in results) else 0


def render_console(
    console: Console, results: Sequence[CaseResult], *, title: str, seed: int, verbose: bool = False
) -> None:
    """Print the tree: one branch per section, one line per case, details on failure."""
    tree = Tree(f"[bold]{title}[/]")
    branches: dict[str, Tree] = {}
    for result in results:
        case = result.case
        section = f"{case.mode} §{case.section}"
        if section not in branches:
            branches[section] = tree.add(f"[bold]{section}[/]")
        line = f"{_MARKS[result.grade]} {case.id} [dim]{case.level.value}[/] {case.title}"
        if result.note and (verbose or result.grade in (Grade.INFO, Grade.SKIP, Grade.PASS)):
            line += f" [dim]({result.note})[/]"
        node = branches[section].add(line)
        if result.grade in (Grade.FAIL, Grade.NON_STRICT):
            node.add(f"requirement: {case.requirement}")
            node.add(f"expected: {result.expected}")
            node.add(f"actual: {result.actual}")
            for entry in result.log[-LOG_TAIL:]:
                node.add(f"[dim]{entry.render()}[/]", highlight=False)
    console.print(tree)
    counts = summary(results)
    console.print(
        " ".join(f"{name} {count}" for name, count in counts.items()) + f"  (seed {seed})"
    )


def to_json(
    results: Sequence[CaseResult],
    *,
    mode: str,
    target: str,
    profile: str,
    seed: int,
    strict: bool,
) -> dict[str, Any]:
    """The report as a JSON-ready object (schema above)."""
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "suite_version": SUITE_VERSION,
        "mode": mode,
        "target": target,
        "profile": profile,
        "seed": seed,
        "strict": strict,
        "summary": summary(results),
        "exit_status": exit_status(results, strict),
        "cases": [_case_json(r) for r in results],
    }


def _case_json(result: CaseResult) -> dict[str, Any]:
    case = result.case
    return {
        "id": case.id,
        "section": case.section,
        "title": case.title,
        "requirement": case.requirement,
        "level": case.level.value,
        "profile": case.profile.value,
        "grade": result.grade.value,
        "note": result.note,
        "expected": result.expected,
        "actual": result.actual,
        "duration_s": round(result.duration, 4),
        "wire_log": [e.render() for e in result.log[-LOG_TAIL:]],
    }


def write_json(path: Path, report: dict[str, Any]) -> None:
    """Write the JSON report."""
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def to_junit(results: Sequence[CaseResult], *, suite: str, strict: bool) -> ET.ElementTree:
    """The report as JUnit XML: FAIL (and NON_STRICT under ``strict``) are failures."""
    counts = summary(results)
    failing = {Grade.FAIL, Grade.NON_STRICT} if strict else {Grade.FAIL}
    root = ET.Element("testsuites")
    node = ET.SubElement(
        root,
        "testsuite",
        name=suite,
        tests=str(len(results)),
        failures=str(sum(1 for r in results if r.grade in failing)),
        skipped=str(counts["SKIP"]),
    )
    for result in results:
        case = result.case
        tc = ET.SubElement(
            node,
            "testcase",
            classname=f"{case.mode}.{case.section}",
            name=case.id,
            time=f"{result.duration:.3f}",
        )
        if result.grade in failing:
            fail = ET.SubElement(tc, "failure", message=f"{case.level.value}: {case.title}")
            log = "\n".join(e.render() for e in result.log[-LOG_TAIL:])
            fail.text = (
                f"requirement: {case.requirement}\nexpected: {result.expected}\n"
                f"actual: {result.actual}\n{log}"
            )
        elif result.grade is Grade.SKIP:
            ET.SubElement(tc, "skipped", message=result.note)
        elif result.note:
            ET.SubElement(tc, "system-out").text = f"{result.grade.value}: {result.note}"
    return ET.ElementTree(root)


def write_junit(path: Path, tree: ET.ElementTree) -> None:
    """Write the JUnit XML report."""
    tree.write(path, encoding="utf-8", xml_declaration=True)
