"""Types shared by every sandbox runner: limits, prepared agents, outcomes, the protocol."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from pathlib import Path
from typing import Final, Protocol, final, runtime_checkable

__all__ = [
    "BRIDGE_SOCKET_ENV",
    "SANDBOX_BRIDGE_DIR",
    "SANDBOX_BRIDGE_SOCKET",
    "SANDBOX_UID",
    "AgentImage",
    "RunOutcome",
    "Runner",
    "RunnerError",
    "RunnerKind",
    "RunnerUnavailable",
    "SandboxLimits",
]

SANDBOX_BRIDGE_DIR: Final = "/run/hivemind"
SANDBOX_BRIDGE_SOCKET: Final = "/run/hivemind/bridge.sock"
"""Where every sandbox sees its per-run bridge socket."""
BRIDGE_SOCKET_ENV: Final = "HIVEMIND_BRIDGE_SOCKET"
"""The one variable a runner sets for the agent: the bridge socket path, nothing else."""
SANDBOX_UID: Final = 65534
"""The unprivileged user (``nobody``) agents run as inside docker and bwrap sandboxes."""


class RunnerKind(enum.Enum):
    """The sandbox technologies, strongest first."""

    DOCKER = "docker"
    BWRAP = "bwrap"
    LOCAL = "local"


class RunnerError(Exception):
    """An agent cannot be prepared or started (bad agent directory, build failure)."""


class RunnerUnavailable(RunnerError):
    """The requested runner cannot be used on this machine or is not enabled."""


@final
@dataclasses.dataclass(frozen=True)
class SandboxLimits:
    """Resource limits of one sandboxed agent run.

    Attributes:
        memory_mb: Memory ceiling (no swap beyond it).
        pids: Most processes and threads at once.
        cpus: CPU share, in CPUs.
        timeout_s: Wall-clock limit; the sandbox is killed when it passes.
        tmpfs_mb: Size of the writable ``/tmp``.
        output_bytes: How many trailing bytes of stdout and of stderr are kept.
    """

    memory_mb: int = 256
    pids: int = 64
    cpus: float = 1.0
    timeout_s: float = 60
    tmpfs_mb: int = 64
    output_bytes: int = 64 * 1024

    def __post_init__(self) -> None:
        if not 16 <= self.memory_mb <= 65536:
            raise ValueError("memory_mb must be between 16 and 65536")
        if not 8 <= self.pids <= 4096:
            raise ValueError("pids must be between 8 and 4096")
        if not 0.01 <= self.cpus <= 64:
            raise ValueError("cpus must be between 0.01 and 64")
        if not 0 < self.timeout_s <= 86400:
            raise ValueError("timeout_s must be positive and at most a day")
        if not 1 <= self.tmpfs_mb <= 65536:
            raise ValueError("tmpfs_mb must be between 1 and 65536")
        if not 1024 <= self.output_bytes <= 16 * 1024 * 1024:
            raise ValueError("output_bytes must be between 1 KiB and 16 MiB")


@final
@dataclasses.dataclass(frozen=True)
class AgentImage:
    """A prepared agent, ready to run on the runner that prepared it.

    Attributes:
        digest: The agent's ``files_digest`` (verified against the files).
        agent_dir: The runner's private read-only copy of the agent files.
        command: The argv the sandbox runs (ENTRYPOINT and CMD of the Dockerfile).
        runner: The runner kind that prepared it.
        handle: Runner-specific reference (the docker image id; empty otherwise).
        workdir: Working directory inside the sandbox.
        env: Variables the Dockerfile sets with ``ENV`` (agent-authored, never inputs).
    """

    digest: str
    agent_dir: Path
    command: tuple[str, ...]
    runner: RunnerKind
    handle: str = ""
    workdir: str = "/agent"
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.command:
            raise ValueError("an agent image needs a command")


@final
@dataclasses.dataclass(frozen=True)
class RunOutcome:
    """What one sandboxed run produced.

    Attributes:
        exit_code: The agent's exit status (negative or ``128+n`` when killed by a signal).
        stdout_tail: Last ``limits.output_bytes`` of stdout, UTF-8 with replacement.
        stderr_tail: Last ``limits.output_bytes`` of stderr, UTF-8 with replacement.
        duration_s: Wall-clock seconds from start to exit.
        timed_out: The wall-clock limit killed the sandbox.
        oom_killed: The memory limit killed a process of the sandbox.
        runner: Which runner ran it.
        limits_enforced: Which limits the kernel enforced (``memory``, ``pids``, ``cpu``,
            ``timeout``, ``tmpfs``, ``network``, ``filesystem``); anything missing here was
            not enforced on this machine.
        stdout_truncated: More stdout was produced than the tail holds.
        stderr_truncated: More stderr was produced than the tail holds.
    """

    exit_code: int
    stdout_tail: str
    stderr_tail: str
    duration_s: float
    timed_out: bool
    oom_killed: bool
    runner: RunnerKind
    limits_enforced: frozenset[str] = frozenset()
    stdout_truncated: bool = False
    stderr_truncated: bool = False

    @property
    def ok(self) -> bool:
        """True when the agent exited 0 on its own, within its limits."""
        return self.exit_code == 0 and not self.timed_out and not self.oom_killed


@runtime_checkable
class Runner(Protocol):
    """A sandbox technology that prepares agents and runs them against a bridge socket."""

    @property
    def kind(self) -> RunnerKind:
        """Which sandbox this is."""
        ...

    async def prepare(self, agent_dir: Path, digest: str) -> AgentImage:
        """Verify the agent files against ``digest`` and make them runnable.

        Raises:
            RunnerError: the directory does not match the digest, the Dockerfile is not
                supported by this runner, or the build failed.
        """
        ...

    async def run(
        self,
        image: AgentImage,
        *,
        bridge_socket: Path,
        limits: SandboxLimits,
        stage: str,
    ) -> RunOutcome:
        """Run the agent once; the sandbox sees ``bridge_socket`` at ``/run/hivemind/bridge.sock``.

        The call returns within ``limits.timeout_s`` plus a bounded cleanup; on timeout or
        cancellation the sandbox is killed and removed.
        """
        ...
