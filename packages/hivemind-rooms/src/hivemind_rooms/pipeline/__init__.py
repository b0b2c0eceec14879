"""Room runs: plans, the engine (worker pool and stages), recovery after restarts."""

from __future__ import annotations

from ._config import EngineConfig
from ._engine import QueueFull, RunEngine, make_limits
from ._factory import default_engine
from ._plan import ROLES, AgentRef, RunPlan
from ._record import INTERRUPTED, recover_interrupted
from ._stage import StageError, StageResult, write_agent_dir

__all__ = [
    "INTERRUPTED",
    "ROLES",
    "AgentRef",
    "EngineConfig",
    "QueueFull",
    "RunEngine",
    "RunPlan",
    "StageError",
    "StageResult",
    "default_engine",
    "make_limits",
    "recover_interrupted",
    "write_agent_dir",
]
