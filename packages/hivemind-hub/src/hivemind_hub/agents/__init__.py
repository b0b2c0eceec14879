"""Agent protocols: where admitted messages go and where answers come from."""

from __future__ import annotations

from ._base import AGENT_GROUP, Agent, AgentHost, NullAgent, load_agent
from .ovos import OVOSBusAgent
from .persona import PersonaAgent, reply_to

__all__ = [
    "AGENT_GROUP",
    "Agent",
    "AgentHost",
    "NullAgent",
    "OVOSBusAgent",
    "PersonaAgent",
    "load_agent",
    "reply_to",
]
