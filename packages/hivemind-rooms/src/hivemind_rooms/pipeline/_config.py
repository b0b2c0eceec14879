"""Run-pipeline configuration (``HIVEMIND_*`` variables), read once at start-up."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import final

from ..settings import SettingsError, env_bool, env_choice, env_int

__all__ = ["RUNNER_CHOICES", "SCOPE_MODES", "EngineConfig"]

RUNNER_CHOICES = ("auto", "docker", "bwrap", "local")
"""Values of ``HIVEMIND_RUNNER`` (``auto`` and every runner kind)."""
SCOPE_MODES = ("fast", "rehearsed", "sealed_conservative")
"""Scope-stage mode hints an operator may force with ``HIVEMIND_SCOPE_MODE``."""


def _names(raw: str) -> frozenset[str]:
    return frozenset(p.strip().lower() for p in raw.split(",") if p.strip())


@final
@dataclasses.dataclass(frozen=True)
class EngineConfig:
    """Limits and defaults of room runs.

    Attributes:
        workers: Runs executed at once (the bounded worker pool).
        queue_size: Submitted runs waiting for a worker before 503.
        default_model: Model of every stage unless the request names one.
        default_max_tokens: Token budget of a run that names none.
        max_tokens: Ceiling of any run's token budget.
        max_llm_calls: Ceiling of LLM calls per stage.
        agent_timeout_s: Ceiling of a stage's wall-clock time.
        memory_cap_mb: Ceiling of a stage's memory.
        max_output_chars: Released output is cut to this many characters.
        scope_call_timeout_s: Wall-clock limit of one scope-function call.
        artifact_retention_s: Artifacts are deleted after this many seconds.
        run_retention_s: A finished run's prompt, output, error, usage and
            attestation are cleared this many seconds after its last update.
        runner: Preferred runner kind (``docker``, ``bwrap``, ``local``, or ``auto``).
        allow_local_runner: Whether the unsandboxed local runner may be used.
        scope_mode: The scope-stage mode every run is forced to (one of
            :data:`SCOPE_MODES`), or empty to let the service choose per run.
        disabled_providers: Providers the operator switched off (lower case).
        disabled_routes: ``provider:model`` pairs the operator switched off (lower case).
    """

    workers: int = 2
    queue_size: int = 64
    default_model: str = "moonshotai/kimi-k2.6"
    default_max_tokens: int = 1_000_000
    max_tokens: int = 100_000_000
    max_llm_calls: int = 100
    agent_timeout_s: int = 900
    memory_cap_mb: int = 256
    max_output_chars: int = 50_000
    scope_call_timeout_s: float = 15.0
    artifact_retention_s: int = 86_400
    run_retention_s: int = 30 * 86_400
    runner: str = "auto"
    allow_local_runner: bool = False
    scope_mode: str = ""
    disabled_providers: frozenset[str] = frozenset()
    disabled_routes: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.runner not in RUNNER_CHOICES:
            raise SettingsError(
                f"HIVEMIND_RUNNER must be one of {', '.join(RUNNER_CHOICES)}, got {self.runner!r}"
            )
        if self.scope_mode and self.scope_mode not in SCOPE_MODES:
            raise SettingsError(
                f"HIVEMIND_SCOPE_MODE must be one of {', '.join(SCOPE_MODES)}, "
                f"got {self.scope_mode!r}"
            )

    def route_disabled(self, provider: str, model: str) -> bool:
        """Whether the operator disabled this provider or this provider/model route."""
        provider, model = provider.strip().lower(), model.strip().lower()
        return provider in self.disabled_providers or f"{provider}:{model}" in self.disabled_routes

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EngineConfig:
        """Read and check the configuration from ``HIVEMIND_*`` variables.

        Raises:
            SettingsError: a variable holds an unusable value (the message
                names it, the value and what is accepted).
        """
        env = os.environ if env is None else env
        return cls(
            workers=env_int(env, "HIVEMIND_RUN_WORKERS", 2, low=1, high=64),
            queue_size=env_int(env, "HIVEMIND_RUN_QUEUE_SIZE", 64, low=1, high=10_000),
            default_model=env.get("HIVEMIND_LLM_MODEL", "").strip() or cls.default_model,
            default_max_tokens=env_int(
                env, "HIVEMIND_DEFAULT_QUERY_MAX_TOKENS", 1_000_000, low=1, high=10**9
            ),
            max_tokens=env_int(env, "HIVEMIND_MAX_TOKENS", 100_000_000, low=1, high=10**10),
            max_llm_calls=env_int(env, "HIVEMIND_MAX_LLM_CALLS", 100, low=1, high=10_000),
            agent_timeout_s=env_int(env, "HIVEMIND_AGENT_TIMEOUT", 900, low=1, high=86_400),
            memory_cap_mb=env_int(env, "HIVEMIND_CONTAINER_MEMORY_MB", 256, low=16, high=65_536),
            max_output_chars=env_int(
                env, "HIVEMIND_MAX_RUN_OUTPUT_CHARS", 50_000, low=1, high=10**7
            ),
            artifact_retention_s=env_int(
                env, "HIVEMIND_ARTIFACT_RETENTION_SECONDS", 86_400, low=1, high=10**8
            ),
            run_retention_s=env_int(
                env, "HIVEMIND_RUN_RETENTION_SECONDS", 30 * 86_400, low=1, high=10**9
            ),
            runner=env_choice(env, "HIVEMIND_RUNNER", "auto", RUNNER_CHOICES),
            allow_local_runner=env_bool(env, "HIVEMIND_ALLOW_LOCAL_RUNNER", False),
            scope_mode=env_choice(env, "HIVEMIND_SCOPE_MODE", "", SCOPE_MODES),
            disabled_providers=_names(env.get("HIVEMIND_DISABLED_LLM_PROVIDERS", "")),
            disabled_routes=_names(env.get("HIVEMIND_DISABLED_LLM_ROUTES", "")),
        )
