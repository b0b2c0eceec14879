"""Per-run cgroups (memory, pids, cpu) for runners that start plain processes.

Theory of operation. A run gets fresh groups whose limits are written before
the sandbox starts; the sandbox joins them itself as its first act (a tiny
``sh`` prologue writes its own pid to each ``cgroup.procs`` and then
``exec``s bwrap, failing closed if any write fails), so no process of the run
ever exists outside them. After the run, everything still inside is killed
and the groups are removed.

On cgroup v1 the groups are children, per controller, of the groups this
service runs in. On cgroup v2 (unified hierarchy) a v2 group may only hand
controllers to children while it holds no processes itself, so runs live
under a dedicated ``hivemind.runs`` group below the hierarchy root, whose
``subtree_control`` enables memory, pids and cpu. Hosts where neither works
(no privileges, a container without a delegated hierarchy) get no groups and
the runner falls back to rlimits.
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

__all__ = ["CgroupRun", "CgroupV2Run", "cgroup_v1_available", "cgroup_v2_parent", "create_run"]

_ROOT: Final = Path("/sys/fs/cgroup")
_CONTROLLERS: Final = ("memory", "pids", "cpu")
_CFS_PERIOD_US: Final = 100_000
_V2_PARENT: Final = "hivemind.runs"


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


def _write_controllers(control: Path, names: tuple[str, ...]) -> None:
    enabled = set(control.read_text().split())
    for name in names:
        if name not in enabled:
            control.write_text(f"+{name}")


def cgroup_v2_parent() -> Path | None:
    """The v2 group that holds per-run groups, set up on first use; None when unusable.

    The parent sits directly below the hierarchy root (the only group allowed to hold
    processes and delegate controllers at once) and enables memory, pids and cpu for its
    children.
    """
    if not (_ROOT / "cgroup.controllers").exists():
        return None
    try:
        available = set((_ROOT / "cgroup.controllers").read_text().split())
        if not {"memory", "pids", "cpu"} <= available:
            return None
        _write_controllers(_ROOT / "cgroup.subtree_control", _CONTROLLERS)
        parent = _ROOT / _V2_PARENT
        parent.mkdir(exist_ok=True)
        _write_controllers(parent / "cgroup.subtree_control", _CONTROLLERS)
        return parent
    except OSError:
        return None


class CgroupV2Run:
    """The single v2 group of one run (same use as :class:`CgroupRun`)."""

    def __init__(self, path: Path | None) -> None:
        self._path = path

    @classmethod
    def create(cls, parent: Path, limits: SandboxLimits) -> CgroupV2Run:
        """Create the group under ``parent`` and write the limits.

        Raises:
            OSError: the group could not be created or a limit could not be written.
        """
        path = parent / ("run-" + secrets.token_hex(8))
        path.mkdir()
        run = cls(path)
        try:
            memory = str(limits.memory_mb * 1024 * 1024)
            (path / "memory.max").write_text(memory)
            if (path / "memory.swap.max").exists():
                (path / "memory.swap.max").write_text("0")
            (path / "pids.max").write_text(str(limits.pids))
            quota = max(1000, int(limits.cpus * _CFS_PERIOD_US))
            (path / "cpu.max").write_text(f"{quota} {_CFS_PERIOD_US}")
        except BaseException:
            run.close()
            raise
        return run

    @property
    def procs_files(self) -> list[str]:
        """The ``cgroup.procs`` file the sandbox writes its pid into."""
        return [str(self._path / "cgroup.procs")] if self._path is not None else []

    def oom_killed(self) -> bool:
        """True when the kernel killed a process of this run for memory."""
        if self._path is None:
            return False
        with contextlib.suppress(OSError):
            for line in (self._path / "memory.events").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill" and value.strip() not in ("", "0"):
                    return True
        return False

    def close(self) -> None:
        """Kill every process left in the group, then remove it (bounded)."""
        if self._path is None:
            return
        path, self._path = self._path, None
        with contextlib.suppress(OSError):
            (path / "cgroup.kill").write_text("1")
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            try:
                pids = [int(p) for p in (path / "cgroup.procs").read_text().split()]
            except OSError:
                break
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)
        for _ in range(100):
            try:
                path.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.02)


def create_run(version: str, limits: SandboxLimits) -> CgroupRun | CgroupV2Run:
    """Create the groups of one run on cgroup ``v1`` or ``v2``.

    Raises:
        OSError: the groups could not be created.
    """
    if version == "v2":
        parent = cgroup_v2_parent()
        if parent is None:
            raise OSError("cgroup v2 is not usable")
        return CgroupV2Run.create(parent, limits)
    return CgroupRun.create(limits)
