"""Per-run cgroup v1 groups (memory, pids, cpu) for runners that start plain processes.

Theory of operation. On a cgroup v1 host with writable controllers, a run
gets a fresh child group, per controller, below the group this service runs
in. Limits are written before the sandbox starts; the sandbox joins the
groups itself as its first act (a tiny ``sh`` prologue writes its own pid to
each ``cgroup.procs`` and then ``exec``s bwrap, failing closed if any write
fails), so no process of the run ever exists outside them. After the run,
everything still inside is killed and the groups are removed. Hosts without
writable v1 controllers get no groups and the runner falls back to rlimits.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
from pathlib import Path
from typing import Final

from ._types import SandboxLimits

__all__ = ["CgroupRun", "cgroup_v1_available"]

_ROOT: Final = Path("/sys/fs/cgroup")
_CONTROLLERS: Final = ("memory", "pids", "cpu")
_CFS_PERIOD_US: Final = 100_000


def _own_path(controller: str) -> Path | None:
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, names, path = line.split(":", 2)
        if controller in names.split(","):
            return _ROOT / controller / path.lstrip("/")
    return None


def cgroup_v1_available() -> bool:
    """True when every needed v1 controller is mounted and writable by this process."""
    for controller in _CONTROLLERS:
        base = _own_path(controller)
        if base is None or not (base / "cgroup.procs").exists() or not os.access(base, os.W_OK):
            return False
    return True


class CgroupRun:
    """The memory, pids and cpu groups of one run.

    Use :meth:`create`, then put the sandbox's pid into :attr:`procs_files`, then
    :meth:`close` (kills leftovers and removes the groups).
    """

    def __init__(self, paths: dict[str, Path]) -> None:
        self._paths = paths

    @classmethod
    def create(cls, limits: SandboxLimits) -> CgroupRun:
        """Create the groups and write the limits.

        Raises:
            OSError: a group could not be created or a limit could not be written.
        """
        name = "hivemind-run-" + secrets.token_hex(8)
        paths: dict[str, Path] = {}
        run = cls(paths)
        try:
            for controller in _CONTROLLERS:
                base = _own_path(controller)
                if base is None:
                    raise OSError(f"no {controller} cgroup")
                path = base / name
                path.mkdir()
                paths[controller] = path
            run._write_limits(limits)
        except BaseException:
            run.close()
            raise
        return run

    def _write_limits(self, limits: SandboxLimits) -> None:
        memory = str(limits.memory_mb * 1024 * 1024)
        mem = self._paths["memory"]
        (mem / "memory.limit_in_bytes").write_text(memory)
        swap = mem / "memory.memsw.limit_in_bytes"
        if swap.exists():
            swap.write_text(memory)
        (self._paths["pids"] / "pids.max").write_text(str(limits.pids))
        cpu = self._paths["cpu"]
        (cpu / "cpu.cfs_period_us").write_text(str(_CFS_PERIOD_US))
        (cpu / "cpu.cfs_quota_us").write_text(str(max(1000, int(limits.cpus * _CFS_PERIOD_US))))

    @property
    def procs_files(self) -> list[str]:
        """The ``cgroup.procs`` files the sandbox writes its pid into."""
        return [str(path / "cgroup.procs") for path in self._paths.values()]

    def oom_killed(self) -> bool:
        """True when the kernel killed a process of this run for memory."""
        path = self._paths.get("memory")
        if path is None:
            return False
        with contextlib.suppress(OSError):
            for line in (path / "memory.oom_control").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill" and value.strip() not in ("", "0"):
                    return True
        return False

    def _pids(self) -> set[int]:
        found: set[int] = set()
        for path in self._paths.values():
            with contextlib.suppress(OSError):
                found.update(int(p) for p in (path / "cgroup.procs").read_text().split())
        return found

    def close(self) -> None:
        """Kill every process left in the groups, then remove the groups (bounded)."""
        deadline = time.monotonic() + 5.0
        while (pids := self._pids()) and time.monotonic() < deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)
        for path in self._paths.values():
            for _ in range(100):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
        self._paths.clear()
