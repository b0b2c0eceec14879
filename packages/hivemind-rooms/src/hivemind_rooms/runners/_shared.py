"""Pieces shared by the runners: the bridge socket check and the agent snapshot cache."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

import trio

from ._agentdir import check_digest, read_agent_dir, write_snapshot
from ._dockerfile import parse_dockerfile
from ._process import ProcessResult
from ._types import AgentImage, RunnerError, RunnerKind, RunOutcome
from .base_image import BASE_IMAGE

__all__ = ["SnapshotCache", "process_outcome", "remove_snapshots", "socket_for_sandbox"]


def socket_for_sandbox(path: Path) -> Path:
    """Check ``path`` is a unix socket and let the sandbox user connect to it."""
    try:
        info = path.stat()
    except OSError:
        raise RunnerError("the bridge socket does not exist") from None
    if not stat.S_ISSOCK(info.st_mode):
        raise RunnerError("the bridge socket path is not a unix socket")
    # connect() needs write permission on the socket inode; the bridge keeps it in a
    # private directory, and the sandbox reaches the inode only through its own mount.
    path.chmod(0o666)
    return path.resolve()


def process_outcome(
    result: ProcessResult,
    *,
    runner: RunnerKind,
    oom_killed: bool,
    limits_enforced: frozenset[str],
) -> RunOutcome:
    """The :class:`RunOutcome` of a sandbox run as one bounded host process.

    Args:
        result: What :func:`~._process.run_bounded` reported.
        runner: The runner that started the process.
        oom_killed: Whether the memory limit killed a process of the run.
        limits_enforced: The limits the kernel enforced for this run.

    Returns:
        The outcome with the process's exit status, output tails and timing.
    """
    return RunOutcome(
        exit_code=result.exit_code,
        stdout_tail=result.stdout.text(),
        stderr_tail=result.stderr.text(),
        duration_s=result.duration_s,
        timed_out=result.timed_out,
        oom_killed=oom_killed,
        runner=runner,
        limits_enforced=limits_enforced,
        stdout_truncated=result.stdout.truncated,
        stderr_truncated=result.stderr.truncated,
    )


def remove_snapshots(root: Path) -> None:
    """Delete a snapshot directory tree (its trees are read-only)."""
    for dirpath, _, _ in os.walk(root):
        Path(dirpath).chmod(0o755)
    shutil.rmtree(root, ignore_errors=True)


class SnapshotCache:
    """Verified, read-only agent snapshots of the process runners, keyed by digest.

    At most ``max_entries`` snapshots are kept; the least recently used ones that no run
    is using are removed first.

    Args:
        root: A private directory to keep them in; by default a fresh temporary
            directory (mode 0700) removed with the cache.
        max_entries: How many snapshots to keep.
    """

    def __init__(self, root: Path | None = None, *, max_entries: int = 64) -> None:
        if root is None:
            root = Path(tempfile.mkdtemp(prefix="hivemind-agents-"))
            weakref.finalize(self, remove_snapshots, root)
        self.root = root
        self._max = max_entries
        self._locks: dict[str, trio.Lock] = {}
        self._used: dict[str, float] = {}
        self._active: dict[str, int] = {}

    async def prepare(self, agent_dir: Path, digest: str, kind: RunnerKind) -> AgentImage:
        """Verify ``agent_dir`` against ``digest`` and return an image on its snapshot.

        Raises:
            RunnerError: digest mismatch, or a Dockerfile outside the supported subset.
        """
        files = await trio.to_thread.run_sync(read_agent_dir, agent_dir)
        check_digest(files, digest)
        dockerfile = parse_dockerfile(files["Dockerfile"][0].decode("utf-8", "replace"))
        if dockerfile.bases != (BASE_IMAGE,):
            raise RunnerError(f"agent Dockerfiles must have exactly one stage: FROM {BASE_IMAGE}")
        dockerfile.check_simple_subset()
        key = digest.lower().removeprefix("sha256:")
        target = self.root / key
        async with self._locks.setdefault(key, trio.Lock()):
            if key not in self._used:
                await trio.to_thread.run_sync(write_snapshot, files, target)
            self._used[key] = time.monotonic()
        await trio.to_thread.run_sync(self._evict, key)
        return AgentImage(
            digest=digest,
            agent_dir=target,
            command=dockerfile.command,
            runner=kind,
            workdir=dockerfile.workdir,
            env=dict(dockerfile.env),
        )

    @contextlib.contextmanager
    def in_use(self, image: AgentImage) -> Iterator[None]:
        """Keep ``image``'s snapshot from eviction while a run uses it.

        Raises:
            RunnerError: the snapshot was evicted; prepare the agent again.
        """
        key = image.agent_dir.name
        if key not in self._used or image.agent_dir.parent != self.root:
            raise RunnerError("the agent snapshot is gone; prepare the agent again")
        self._active[key] = self._active.get(key, 0) + 1
        try:
            yield
        finally:
            self._active[key] -= 1
            self._used[key] = time.monotonic()

    def _evict(self, keep: str) -> None:
        idle = sorted(
            (used, key)
            for key, used in self._used.items()
            if key != keep and not self._active.get(key)
        )
        excess = len(self._used) - self._max
        for _, key in idle[: max(0, excess)]:
            del self._used[key]
            remove_snapshots(self.root / key)
