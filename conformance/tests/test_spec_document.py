"""docs/spec/protocol.md and the case catalogue stay in step."""

from __future__ import annotations

import re
from pathlib import Path

from hivemind_conformance.cases import CLIENT_CASES, HUB_CASES

SPEC = Path(__file__).resolve().parents[2] / "docs" / "spec" / "protocol.md"


def test_every_case_is_quoted_verbatim_under_its_section() -> None:
    text = SPEC.read_text(encoding="utf-8")
    headings = {m.group(1) for m in re.finditer(r"^#{2,3} (\d+(?:\.\d+)?) ", text, re.M)}
    for case in HUB_CASES + CLIENT_CASES:
        assert case.section in headings, case.id
        line = f"- `{case.id}` ({case.level.value}, profile {case.profile.value}): "
        assert line + case.requirement in text, case.id


def test_the_spec_lists_no_unknown_case() -> None:
    text = SPEC.read_text(encoding="utf-8")
    listed = set(re.findall(r"^- `((?:hub|client)/[^`]+)`", text, re.M))
    assert listed == {c.id for c in HUB_CASES + CLIENT_CASES}
