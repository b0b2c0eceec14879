"""Room runs: plans, the engine (worker pool and stages), sealed fields and artifacts, recovery."""

from __future__ import annotations

from ._artifacts import (
    ARTIFACT_FORMAT,
    SEALED_SUFFIX,
    SealedArtifactSink,
    open_artifact,
    read_artifact,
    seal_artifact,
    sealed_artifact_names,
    sealed_artifact_path,
    sweep_sealed_artifacts,
)
from ._config import EngineConfig
from ._engine import QueueFull, RunEngine, make_limits
from ._factory import default_engine
from ._fields import (
    ROOM_CLOSED,
    SEALED_FIELDS,
    is_sealed_text,
    open_run_text,
    seal_clear_runs,
    seal_run_text,
    sealed_fields,
)
from ._plan import ROLES, AgentRef, RunPlan
from ._record import INTERRUPTED, recover_interrupted, scrub_expired_runs
from ._stage import StageError, StageResult, write_agent_dir

__all__ = [
    "ARTIFACT_FORMAT",
    "INTERRUPTED",
    "ROLES",
    "ROOM_CLOSED",
    "SEALED_FIELDS",
    "SEALED_SUFFIX",
    "AgentRef",
    "EngineConfig",
    "QueueFull",
    "RunEngine",
    "RunPlan",
    "SealedArtifactSink",
    "StageError",
    "StageResult",
    "default_engine",
    "is_sealed_text",
    "make_limits",
    "open_artifact",
    "open_run_text",
    "read_artifact",
    "recover_interrupted",
    "scrub_expired_runs",
    "seal_artifact",
    "seal_clear_runs",
    "seal_run_text",
    "sealed_artifact_names",
    "sealed_artifact_path",
    "sealed_fields",
    "sweep_sealed_artifacts",
    "write_agent_dir",
]
