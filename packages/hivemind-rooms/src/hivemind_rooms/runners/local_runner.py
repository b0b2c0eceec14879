"""The local runner: development only, the agent runs as a host process with rlimits.

There is no isolation: the agent can read what the service user can read and
use the network. It exists to develop agents on machines without docker or
bubblewrap and is refused unless explicitly enabled (``allow_local=True`` or
``HIVEMIND_ALLOW_LOCAL_RUNNER`` set to ``1``/``true``/``yes``). It follows the same contract as the
sandboxes: the same Dockerfile subset as bwrap, the agent files from a
verified read-only snapshot, a cleared environment holding only fixed values,
the Dockerfile's ``ENV`` and the bridge socket path, rlimits and the timeout.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Final

from ..settings import env_bool
from ._dockerfile import AGENT_MOUNT
from ._process import run_bounded
from ._rlimits import rlimit_argv, rlimits_enforced
from ._shared import SnapshotCache, process_outcome
from ._types import (
    BRIDGE_SOCKET_ENV,
    AgentImage,
    RunnerError,
    RunnerKind,
    RunnerUnavailable,
    RunOutcome,
    SandboxLimits,
)
from .bwrap_runner import BASE_ENV

__all__ = ["ALLOW_LOCAL_ENV", "LocalRunner", "local_runner_allowed"]

ALLOW_LOCAL_ENV: Final = "HIVEMIND_ALLOW_LOCAL_RUNNER"
_PYTHONS: Final = frozenset({"python", "python3", "/usr/bin/python3", "/usr/local/bin/python3"})
_log = logging.getLogger(__name__)


def local_runner_allowed(allow_local: bool = False) -> bool:
    """True when the caller or ``HIVEMIND_ALLOW_LOCAL_RUNNER`` enables it.

    The variable is read like every boolean setting (``1``/``true``/``yes`` or
    ``0``/``false``/``no``, any case, blank for the default ``false``).

    Raises:
        SettingsError: the variable holds any other value.
    """
    return env_bool(os.environ, ALLOW_LOCAL_ENV, False) or allow_local


def _host_path(argument: str, agent_dir: Path) -> str:
    if argument == AGENT_MOUNT or argument.startswith(AGENT_MOUNT + "/"):
        return str(agent_dir) + argument[len(AGENT_MOUNT) :]
    return argument


class LocalRunner:
    """Runs agents as plain host processes (development only, no isolation).

    Args:
        allow_local: Explicit opt-in; without it (or the environment switch) the
            constructor raises :class:`RunnerUnavailable`.
        python: Interpreter used for ``python``/``python3`` commands.
        snapshot_dir: Where prepared agent snapshots live.
    """

    def __init__(
        self,
        *,
        allow_local: bool = False,
        python: str = sys.executable,
        snapshot_dir: Path | None = None,
    ) -> None:
        if not local_runner_allowed(allow_local):
            raise RunnerUnavailable(
                "the local runner gives agents no isolation and is for development only; "
                f"enable it explicitly (allow_local=True or {ALLOW_LOCAL_ENV}=1)"
            )
        _log.warning("local runner enabled: agents run WITHOUT a sandbox (development only)")
        self._python = python
        self._snapshots = SnapshotCache(snapshot_dir)

    @property
    def kind(self) -> RunnerKind:
        """Always :attr:`RunnerKind.LOCAL`."""
        return RunnerKind.LOCAL

    async def prepare(self, agent_dir: Path, digest: str) -> AgentImage:
        """Verify the files, check the Dockerfile subset and keep a read-only snapshot.

        Raises:
            RunnerError: digest mismatch, or a Dockerfile this runner cannot reproduce.
        """
        return await self._snapshots.prepare(agent_dir, digest, RunnerKind.LOCAL)

    def _argv(self, image: AgentImage) -> list[str]:
        argv = [_host_path(a, image.agent_dir) for a in image.command]
        if argv[0] in _PYTHONS:
            argv[0] = self._python
        return argv

    def _env(self, image: AgentImage, home: Path, bridge_socket: Path) -> dict[str, str]:
        env = dict(BASE_ENV)
        env.update(image.env)
        env["HOME"] = env["TMPDIR"] = str(home)
        env["PATH"] = os.path.dirname(self._python) + ":" + BASE_ENV["PATH"]
        env[BRIDGE_SOCKET_ENV] = os.path.abspath(bridge_socket)
        return env

    async def run(
        self,
        image: AgentImage,
        *,
        bridge_socket: Path,
        limits: SandboxLimits,
        stage: str,
    ) -> RunOutcome:
        """Run the agent once as a host process with rlimits and the timeout.

        Raises:
            RunnerError: the image was not prepared by this runner.
        """
        if image.runner is not RunnerKind.LOCAL:
            raise RunnerError("the agent image was not prepared by the local runner")
        with self._snapshots.in_use(image):
            return await self._run(image, bridge_socket, limits)

    async def _run(
        self, image: AgentImage, bridge_socket: Path, limits: SandboxLimits
    ) -> RunOutcome:
        home = Path(tempfile.mkdtemp(prefix="hivemind-local-run-"))
        env = self._env(image, home, bridge_socket)
        cwd = _host_path(image.workdir, image.agent_dir)
        if cwd == image.workdir:
            cwd = str(image.agent_dir)
        try:
            result = await run_bounded(
                rlimit_argv(limits, self._argv(image)),
                env=env,
                cwd=cwd,
                timeout_s=limits.timeout_s,
                tail_bytes=limits.output_bytes,
            )
        finally:
            shutil.rmtree(home, ignore_errors=True)
        return process_outcome(
            result, runner=RunnerKind.LOCAL, oom_killed=False, limits_enforced=rlimits_enforced()
        )
