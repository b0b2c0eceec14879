"""Agent directories: read them within limits, check their digest, keep a private copy.

Theory of operation. A runner never trusts that a directory still holds what
a digest claims: ``prepare`` reads every file once (bounded like an upload),
recomputes ``files_digest`` exactly as the registry does (every file of the
directory, nothing skipped: the directory is what the registry stored), and
refuses a mismatch. The bytes that were hashed are the bytes that run: the docker runner
builds from a tar made of them, and bwrap/local runners write them to a
private, read-only snapshot directory, so later changes to the source
directory cannot alter a prepared agent. The caches are keyed by digest, which
is therefore safe.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
from collections.abc import Mapping
from pathlib import Path

from ..agents_registry import MAX_MEMBER_BYTES, MAX_MEMBERS, MAX_TOTAL_BYTES, files_digest
from ._types import RunnerError

__all__ = ["AgentFiles", "agent_dir_digest", "read_agent_dir", "write_snapshot"]

AgentFiles = Mapping[str, tuple[bytes, int]]
"""Relative POSIX path -> (content, permission bits)."""


def _walk(root: Path) -> list[tuple[str, Path]]:
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        base = Path(dirpath)
        for name in dirnames:
            if (base / name).is_symlink():
                raise RunnerError(f"agent directory holds a link: {name}")
        for name in sorted(filenames):
            found.append(((base / name).relative_to(root).as_posix(), base / name))
            if len(found) > MAX_MEMBERS:
                raise RunnerError(f"agent directory holds more than {MAX_MEMBERS} files")
    return found


def read_agent_dir(root: Path) -> dict[str, tuple[bytes, int]]:
    """Read every file of an agent directory (links and special files refused).

    Raises:
        RunnerError: not a directory, no Dockerfile, a link or special file, or a limit.
    """
    if not root.is_dir():
        raise RunnerError("the agent directory does not exist")
    files: dict[str, tuple[bytes, int]] = {}
    total = 0
    for relative, path in _walk(root):
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode):
            raise RunnerError(f"agent directory holds a link or special file: {relative}")
        if info.st_size > MAX_MEMBER_BYTES:
            raise RunnerError(f"agent file exceeds {MAX_MEMBER_BYTES} bytes: {relative}")
        total += info.st_size
        if total > MAX_TOTAL_BYTES:
            raise RunnerError(f"agent directory exceeds {MAX_TOTAL_BYTES} bytes")
        files[relative] = (path.read_bytes(), stat.S_IMODE(info.st_mode))
    if "Dockerfile" not in files:
        raise RunnerError("a Dockerfile is required at the agent directory root")
    return files


def agent_dir_digest(root: Path) -> str:
    """The ``files_digest`` of an agent directory (what ``prepare`` expects)."""
    files = read_agent_dir(root)
    return files_digest((path, content) for path, (content, _) in files.items())


def check_digest(files: AgentFiles, digest: str) -> None:
    """Raise :class:`RunnerError` unless ``files`` hash to ``digest``."""
    actual = files_digest((path, content) for path, (content, _) in files.items())
    if actual != digest.lower().removeprefix("sha256:"):
        raise RunnerError("agent files do not match the expected digest")


def build_context(files: AgentFiles) -> bytes:
    """A tar of exactly these files (fixed owner and times) for a docker build."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, (content, mode) in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size = len(content)
            info.mode = (mode & 0o755) | 0o444
            info.mtime = 0
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def write_snapshot(files: AgentFiles, target: Path) -> None:
    """Write the files under ``target`` (created) and make the tree read-only."""
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(mode=0o755, parents=True)
    for path, (content, mode) in files.items():
        destination = partial / path
        destination.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        destination.write_bytes(content)
        destination.chmod((mode & 0o555) | 0o444)
    for dirpath, _, _ in os.walk(partial):
        Path(dirpath).chmod(0o555)
    partial.rename(target)
