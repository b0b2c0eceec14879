"""Files a query agent may hand out with its answer (no mediator, artifacts allowed).

The bridge hands uploads to any :class:`ArtifactStore`; the room service's
store seals them under the room key (``hivemind_rooms.pipeline``) in
``<root>/<tenant_id>/<run_id>/``, so no plain-file store exists to misuse.
Names follow one strict pattern (:func:`artifact_path`), and a sweep deletes
run directories older than the retention period.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import Final, Protocol

__all__ = [
    "ARTIFACT_NAME",
    "ArtifactError",
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
