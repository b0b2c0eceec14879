"""The agent interface: what the hub needs from an agent protocol.

An agent is the thing satellites talk to through the hub (an OVOS message
bus, an LLM persona, ...). The hub calls ``emit`` (never blocks; a full queue
drops and counts) and runs ``run`` in its nursery; the agent hands every
message it produces to ``host.deliver``, where the routing core decides
which connection, if any, receives it (context.destination).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any, Final, Protocol, runtime_checkable

import trio

__all__ = ["AGENT_GROUP", "Agent", "AgentHost", "NullAgent", "load_agent"]

#: Entry-point group of agent protocols.
AGENT_GROUP: Final = "hivemind.agent"


class AgentHost(Protocol):
    """The hub side of an agent."""

    def deliver(self, message: Mapping[str, Any]) -> None:
        """Route one message the agent produced (``{"type", "data", "context"}``)."""
        ...


@runtime_checkable
class Agent(Protocol):
    """An agent protocol."""

    name: str
    answers_queries: bool

    def emit(self, message: Mapping[str, Any]) -> bool:
        """Queue a message for the agent; False when it was dropped."""
        ...

    async def run(
        self, host: AgentHost, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run until cancelled, delivering the agent's messages to ``host``."""
        ...


class NullAgent:
    """No agent (``agent_protocol.module: null``): every message is dropped."""

    name = "none"
    answers_queries = False

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self.dropped = 0

    def emit(self, message: Mapping[str, Any]) -> bool:
        """Drop the message."""
        self.dropped += 1
        return False

    async def run(
        self, host: AgentHost, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Do nothing until cancelled."""
        task_status.started()
        await trio.sleep_forever()


AgentFactory = Callable[[Mapping[str, Any]], Agent]


def load_agent(agent_protocol: Mapping[str, Any]) -> Agent:
    """Build the configured agent from ``agent_protocol`` (upstream layout).

    ``{"module": NAME, NAME: {...options}}``; ``module: null`` gives ``NullAgent``.

    Raises:
        LookupError: no agent plugin of that name is installed.
    """
    module = agent_protocol.get("module")
    if not module:
        return NullAgent()
    options = agent_protocol.get(module) or {}
    for ep in entry_points(group=AGENT_GROUP, name=str(module)):
        factory: AgentFactory = ep.load()
        return factory(dict(options))
    raise LookupError(f"no agent plugin named {module!r} in group {AGENT_GROUP}")
