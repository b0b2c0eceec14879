"""Sandbox runners: where room agents execute.

Three runners share one interface (:class:`Runner`): ``docker`` (images built
locally from the agent base, containers without network or privileges),
``bwrap`` (bubblewrap namespaces around the host's python) and ``local``
(development only, no isolation, refused unless explicitly enabled). Agents
reach their per-run bridge through the unix socket the sandbox sees at
``/run/hivemind/bridge.sock``; the only environment variable a runner sets is
``HIVEMIND_BRIDGE_SOCKET`` naming that path. Inputs never travel in the
environment.

Typical use::

    runner = select_runner(None, allow_local=False)
    image = await runner.prepare(agent_dir, digest)
    outcome = await runner.run(image, bridge_socket=sock, limits=SandboxLimits(), stage="query")
"""

from __future__ import annotations

from ._agentdir import agent_dir_digest
from ._select import RunnerStatus, available_runners, select_runner
from ._types import (
    BRIDGE_SOCKET_ENV,
    SANDBOX_BRIDGE_SOCKET,
    SANDBOX_UID,
    AgentImage,
    Runner,
    RunnerError,
    RunnerKind,
    RunnerUnavailable,
    RunOutcome,
    SandboxLimits,
)
from .bwrap_runner import BwrapRunner
from .docker_runner import DockerRunner
from .local_runner import ALLOW_LOCAL_ENV, LocalRunner

__all__ = [
    "ALLOW_LOCAL_ENV",
    "BRIDGE_SOCKET_ENV",
    "SANDBOX_BRIDGE_SOCKET",
    "SANDBOX_UID",
    "AgentImage",
    "BwrapRunner",
    "DockerRunner",
    "LocalRunner",
    "RunOutcome",
    "Runner",
    "RunnerError",
    "RunnerKind",
    "RunnerStatus",
    "RunnerUnavailable",
    "SandboxLimits",
    "agent_dir_digest",
    "available_runners",
    "select_runner",
]
