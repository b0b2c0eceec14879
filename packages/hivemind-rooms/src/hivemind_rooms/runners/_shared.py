"""Pieces shared by the runners: the bridge socket check and snapshot preparation."""

from __future__ import annotations

import stat
from pathlib import Path

import trio

from ._agentdir import check_digest, read_agent_dir, write_snapshot
from ._dockerfile import parse_dockerfile
from ._types import AgentImage, RunnerError, RunnerKind
from .base_image import BASE_IMAGE

__all__ = ["prepare_snapshot", "socket_for_sandbox"]


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


async def prepare_snapshot(
    agent_dir: Path,
    digest: str,
    snapshots: Path,
    locks: dict[str, trio.Lock],
    kind: RunnerKind,
) -> AgentImage:
    """Shared ``prepare`` of the process runners (bwrap and local).

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
    target = snapshots / key
    async with locks.setdefault(key, trio.Lock()):
        if not target.is_dir():
            await trio.to_thread.run_sync(write_snapshot, files, target)
    return AgentImage(
        digest=digest,
        agent_dir=target,
        command=dockerfile.command,
        runner=kind,
        workdir=dockerfile.workdir,
        env=dict(dockerfile.env),
    )
