"""The run engine a service builds by default (from ``HIVEMIND_*`` variables)."""

from __future__ import annotations

import logging
from typing import Any

from ..bridge import HttpUpstream, providers_from_env
from ._config import EngineConfig
from ._engine import RunEngine

__all__ = ["default_engine"]

_log = logging.getLogger(__name__)


def _runner(config: EngineConfig) -> Any:
    try:
        from ..runners import select_runner

        return select_runner(config.runner, allow_local=config.allow_local_runner)
    except Exception as exc:
        _log.warning("no sandbox runner available: %s", type(exc).__name__)
        return None


def default_engine(services: Any) -> RunEngine:
    """Build the engine: the configured runner and the providers that have an API key.

    Without any provider key the LLM routes of every bridge answer 403.
    """
    config = EngineConfig.from_env()
    providers = providers_from_env()
    upstream = HttpUpstream(providers) if providers else None
    return RunEngine(services, runner=_runner(config), upstream=upstream, config=config)
