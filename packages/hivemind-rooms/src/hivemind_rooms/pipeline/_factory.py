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
    """The configured runner, or None when it is not usable on this machine.

    The runner name itself was checked with the settings (an unknown name
    never gets here). A known runner that is unusable right now (docker
    without a daemon, bwrap without user namespaces) does not stop the
    service: uploads, rooms and vault data still work, each run fails with
    "no sandbox runner is available" and ``python -m hivemind_rooms.runners
    doctor`` says why.
    """
    try:
        from ..runners import select_runner

        return select_runner(config.runner, allow_local=config.allow_local_runner)
    except Exception as exc:
        _log.warning("no sandbox runner available: %s", type(exc).__name__)
        return None


def default_engine(services: Any, config: EngineConfig | None = None) -> RunEngine:
    """Build the engine: the configured runner and the providers that have an API key.

    Without any provider key the LLM routes of every bridge answer 503.

    Args:
        services: The service's shared resources.
        config: The run settings, already read at start-up; read from the
            environment when omitted.

    Raises:
        SettingsError: ``config`` is omitted and a run setting is unusable.
    """
    config = EngineConfig.from_env() if config is None else config
    providers = providers_from_env()
    upstream = HttpUpstream(providers) if providers else None
    return RunEngine(services, runner=_runner(config), upstream=upstream, config=config)
