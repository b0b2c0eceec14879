"""The bwrap runner: bubblewrap namespaces around the host's python, limits through cgroups.

Theory of operation. Every namespace is new (user, pid, network, ipc, uts,
cgroup, mount): the sandbox has only a loopback interface, sees only its own
processes, and runs as uid/gid 65534 with every capability dropped, in a new
session (no terminal injection) that dies with its parent. Its filesystem is
built from nothing: read-only binds of ``/usr`` and the library and binary
directories (or the host's compatibility symlinks to them), the alternatives
links, a fresh ``/proc`` and minimal ``/dev``, a size-limited ``/tmp``, the
agent snapshot read-only at ``/agent`` and the bridge socket at
``/run/hivemind/bridge.sock``; the root is then remounted read-only. No host
``/etc`` secrets, home or repository paths exist inside. The environment is
cleared and rebuilt from fixed values, the Dockerfile's ``ENV`` and the
socket path. On x86_64 a seccomp filter (see ``_seccomp``) refuses new
namespaces, tracing, mounting and other kernel surface agents never need.

Memory, pids and CPU are limited by a per-run cgroup when cgroup v1 is
writable (see ``_cgroup``); otherwise by rlimits (see ``_rlimits``). The run
outcome lists what was enforced.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Final

import trio

from ._cgroup import CgroupRun, CgroupV2Run, cgroup_v1_available, cgroup_v2_parent, create_run
from ._dockerfile import AGENT_MOUNT
from ._process import run_bounded
from ._rlimits import rlimit_argv, rlimits_enforced
from ._seccomp import seccomp_supported, write_seccomp_fd
from ._shared import SnapshotCache, process_outcome, socket_for_sandbox
from ._types import (
    BRIDGE_SOCKET_ENV,
    SANDBOX_BRIDGE_DIR,
    SANDBOX_BRIDGE_SOCKET,
    SANDBOX_UID,
    AgentImage,
    RunnerError,
    RunnerKind,
    RunOutcome,
    SandboxLimits,
)

__all__ = ["BASE_ENV", "BwrapRunner"]

BASE_ENV: Final = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "HOME": "/tmp",
}
"""The environment the agent base image defines, reproduced for process runners."""
_HOST_DIRS: Final = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_HOST_FILES: Final = ("/etc/alternatives", "/etc/ld.so.cache")
_JOIN_CGROUPS: Final = (
    'p=$$; while [ "$1" != -- ]; do echo "$p" > "$1" || exit 125; shift; done; shift; exec "$@"'
)
_CGROUP_ENFORCED: Final = frozenset({"memory", "pids", "cpu"})
_SECCOMP: Final = frozenset({"seccomp"})
_NAMESPACE_ENFORCED: Final = frozenset(
    {"timeout", "tmpfs", "network", "filesystem", "capabilities"}
)


def _root_layout() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for path in _HOST_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in _HOST_FILES:
        args += ["--ro-bind-try", path, path]
    return args


def _sandbox_env(image: AgentImage) -> dict[str, str]:
    env = dict(BASE_ENV)
    env.update(image.env)
    env[BRIDGE_SOCKET_ENV] = SANDBOX_BRIDGE_SOCKET
    return env


class BwrapRunner:
    """Runs agents under bubblewrap with the host's ``/usr`` (python 3) read-only.

    Args:
        bwrap: The bubblewrap binary.
        snapshot_dir: A private directory for prepared agent snapshots (a fresh
            temporary directory by default, removed with the runner).
        use_cgroups: ``None`` detects cgroup v1 or v2; ``False`` forces the rlimit fallback.
    """

    def __init__(
        self,
        bwrap: str = "bwrap",
        *,
        snapshot_dir: Path | None = None,
        use_cgroups: bool | None = None,
    ) -> None:
        self._bwrap = bwrap
        self._snapshots = SnapshotCache(snapshot_dir)
        self._cgroups: str | None = None if use_cgroups is not False else ""
        self._disable_userns: bool | None = None

    @property
    def kind(self) -> RunnerKind:
        """Always :attr:`RunnerKind.BWRAP`."""
        return RunnerKind.BWRAP

    async def prepare(self, agent_dir: Path, digest: str) -> AgentImage:
        """Verify the files, check the Dockerfile subset and keep a read-only snapshot.

        Raises:
            RunnerError: digest mismatch, or a Dockerfile this runner cannot reproduce.
        """
        return await self._snapshots.prepare(agent_dir, digest, RunnerKind.BWRAP)

    def _cgroup_version(self) -> str:
        """``v1``, ``v2``, or empty when limits fall back to rlimits (detected once)."""
        if self._cgroups is None:
            if cgroup_v1_available():
                self._cgroups = "v1"
            elif cgroup_v2_parent() is not None:
                self._cgroups = "v2"
            else:
                self._cgroups = ""
        return self._cgroups

    def _userns_flags(self) -> list[str]:
        """``--disable-userns`` where this bubblewrap has it (0.8 and later)."""
        if self._disable_userns is None:
            try:
                done = subprocess.run(
                    [self._bwrap, "--help"], capture_output=True, timeout=10, check=False
                )
                self._disable_userns = b"--disable-userns" in done.stdout + done.stderr
            except (OSError, subprocess.TimeoutExpired):
                self._disable_userns = False
        return ["--disable-userns"] if self._disable_userns else []

    def _bwrap_argv(
        self, image: AgentImage, socket: Path, limits: SandboxLimits, seccomp_fd: int | None
    ) -> list[str]:
        argv = [
            self._bwrap,
            "--unshare-all",
            "--unshare-user",
            *self._userns_flags(),
            "--uid",
            str(SANDBOX_UID),
            "--gid",
            str(SANDBOX_UID),
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
            "--hostname",
            "sandbox",
            *_root_layout(),
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--size",
            str(limits.tmpfs_mb * 1024 * 1024),
            "--tmpfs",
            "/tmp",
            "--dir",
            SANDBOX_BRIDGE_DIR,
            "--bind",
            str(socket),
            SANDBOX_BRIDGE_SOCKET,
            "--ro-bind",
            str(image.agent_dir),
            AGENT_MOUNT,
            "--remount-ro",
            "/",
            "--chdir",
            image.workdir,
            "--clearenv",
        ]
        if seccomp_fd is not None:
            argv += ["--seccomp", str(seccomp_fd)]
        for key, value in sorted(_sandbox_env(image).items()):
            argv += ["--setenv", key, value]
        return [*argv, "--", *image.command]

    async def run(
        self,
        image: AgentImage,
        *,
        bridge_socket: Path,
        limits: SandboxLimits,
        stage: str,
    ) -> RunOutcome:
        """Run the agent once under bubblewrap (see the module docstring).

        Raises:
            RunnerError: the image was not prepared by this runner or the socket is missing.
        """
        if image.runner is not RunnerKind.BWRAP:
            raise RunnerError("the agent image was not prepared by the bwrap runner")
        with self._snapshots.in_use(image):
            return await self._run(image, bridge_socket, limits)

    async def _run(
        self, image: AgentImage, bridge_socket: Path, limits: SandboxLimits
    ) -> RunOutcome:
        socket = socket_for_sandbox(bridge_socket)
        await trio.to_thread.run_sync(self._userns_flags)
        seccomp_fd = write_seccomp_fd() if seccomp_supported() else None
        group: CgroupRun | CgroupV2Run | None = None
        try:
            argv = self._bwrap_argv(image, socket, limits, seccomp_fd)
            enforced = _NAMESPACE_ENFORCED | (_SECCOMP if seccomp_fd is not None else frozenset())
            if version := self._cgroup_version():
                try:
                    group = await trio.to_thread.run_sync(create_run, version, limits)
                except OSError as exc:
                    raise RunnerError(f"cannot create the run's cgroup ({exc.strerror})") from None
                argv = ["/bin/sh", "-c", _JOIN_CGROUPS, "sh", *group.procs_files, "--", *argv]
                enforced |= _CGROUP_ENFORCED
            else:
                argv = rlimit_argv(limits, argv)
                enforced |= rlimits_enforced()
            result = await run_bounded(
                argv,
                env={"PATH": BASE_ENV["PATH"]},
                cwd="/",
                timeout_s=limits.timeout_s,
                tail_bytes=limits.output_bytes,
                pass_fds=() if seccomp_fd is None else (seccomp_fd,),
            )
            oom = group.oom_killed() if group is not None else False
        finally:
            if seccomp_fd is not None:
                os.close(seccomp_fd)
            if group is not None:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(group.close)
        return process_outcome(
            result, runner=RunnerKind.BWRAP, oom_killed=oom, limits_enforced=enforced
        )

    def probe(self) -> tuple[bool, str]:
        """Whether bubblewrap can create the sandbox's namespaces on this machine."""
        binary = shutil.which(self._bwrap)
        if binary is None:
            return False, "bwrap is not installed"
        argv = [binary, "--unshare-all", "--unshare-user", *_root_layout(), "--", "/bin/true"]
        try:
            done = subprocess.run(argv, capture_output=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, f"bwrap failed to start ({type(exc).__name__})"
        if done.returncode != 0:
            return False, "bwrap cannot create namespaces: " + done.stderr.decode()[:200]
        version = self._cgroup_version()
        limits = f"cgroup {version} limits" if version else "rlimit fallback"
        return True, f"{binary}; {limits}"
