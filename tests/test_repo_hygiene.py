"""Repository-wide rules: lint clean, no lock file, no package-index addresses."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUFF = Path(sys.executable).with_name("ruff")


def tracked_files() -> list[Path]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    return [ROOT / name for name in out.decode().split("\0") if name]


@pytest.mark.parametrize("args", [["check", "."], ["format", "--check", "."]])
def test_ruff_is_clean(args: list[str]) -> None:
    result = subprocess.run([str(RUFF), *args], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_lock_file_is_tracked() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in tracked_files()}
    assert "uv.lock" not in names


#: Hosts of package indexes and mirrors (pinned requirement files carry none).
INDEX_HOST = re.compile(
    r"://[^\s\"'/]*(pypi\.org|pythonhosted\.org|deb\.debian\.org|"
    r"registry\.npmjs\.org|files\.pythonhosted)",
    re.IGNORECASE,
)


def test_no_package_index_addresses_in_tracked_files() -> None:
    offenders = []
    for path in tracked_files():
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        if INDEX_HOST.search(text):
            offenders.append(path.relative_to(ROOT).as_posix())
    assert offenders == []


def test_pinned_requirement_files_hold_no_urls() -> None:
    for path in tracked_files():
        if path.name.endswith(".lock") or re.search(r"requirements[^/]*\.txt$", path.name):
            assert "://" not in path.read_text(encoding="utf-8"), path
