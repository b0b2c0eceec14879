"""Files a query agent may hand out with its answer (no mediator, artifacts allowed).

The bridge hands uploads to any :class:`ArtifactStore`. :class:`ArtifactSink`
writes plain files under ``<root>/<tenant_id>/<run_id>/<filename>``; the room
service itself never uses it for runs: it stores artifacts sealed under the
room key (``hivemind_rooms.pipeline``) in the same directory layout. Names
follow one strict pattern, each file and each run have a size cap, and a sweep
deletes run directories older than the retention period.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import Final, Protocol, final

__all__ = [
    "ARTIFACT_NAME",
    "ArtifactError",
    "ArtifactSink",
    "ArtifactStore",
    "artifact_path",
    "sweep_artifacts",
]

ARTIFACT_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class ArtifactError(Exception):
    """An upload was refused: ``status`` and a message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ArtifactStore(Protocol):
    """Where a stage's uploads go (the bridge needs only this)."""

    def store(self, filename: str, content: bytes) -> object:
        """Keep one artifact.

        Raises:
            ArtifactError: the upload is refused (its status is answered).
        """
        ...


def artifact_path(root: Path, tenant_id: str, run_id: str, filename: str) -> Path | None:
    """Path of a stored artifact, or None for a bad name."""
    if not ARTIFACT_NAME.fullmatch(filename) or ".." in filename:
        return None
    if not re.fullmatch(r"[A-Za-z0-9_]{1,64}", tenant_id + run_id):
        return None
    return root / tenant_id / run_id / filename


@final
class ArtifactSink:
    """Stores one run's artifacts.

    Args:
        root: The artifacts directory.
        tenant_id: The run's tenant.
        run_id: The run.
        max_file_bytes: Largest single artifact.
        max_files: Most artifacts per run.
    """

    def __init__(
        self,
        root: Path,
        tenant_id: str,
        run_id: str,
        *,
        max_file_bytes: int = 25 * 1024 * 1024,
        max_files: int = 16,
    ) -> None:
        self._root, self._tenant, self._run = root, tenant_id, run_id
        self._max_bytes, self._max_files = max_file_bytes, max_files
        self.names: list[str] = []

    def store(self, filename: str, content: bytes) -> Path:
        """Write (or replace) one artifact.

        Raises:
            ArtifactError: bad name (400), too large (413), too many (429).
        """
        path = artifact_path(self._root, self._tenant, self._run, filename)
        if path is None:
            raise ArtifactError(400, "invalid artifact filename")
        if len(content) > self._max_bytes:
            raise ArtifactError(413, "artifact too large")
        if filename not in self.names and len(self.names) >= self._max_files:
            raise ArtifactError(429, "too many artifacts for one run")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        if filename not in self.names:
            self.names.append(filename)
        return path


def sweep_artifacts(root: Path, retention_s: float, now: float | None = None) -> int:
    """Delete run artifact directories older than the retention period.

    Returns:
        The number of run directories deleted.
    """
    now = time.time() if now is None else now
    removed = 0
    if not root.is_dir():
        return 0
    for tenant in root.iterdir():
        for run in tenant.iterdir() if tenant.is_dir() else ():
            if run.is_dir() and now - run.stat().st_mtime > retention_s:
                shutil.rmtree(run, ignore_errors=True)
                removed += 1
    return removed
