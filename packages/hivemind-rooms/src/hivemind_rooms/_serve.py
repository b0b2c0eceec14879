"""Run the room service with hypercorn on trio (the only module importing hypercorn)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from .app import create_app
from .pipeline import EngineConfig, default_engine
from .settings import Settings, SettingsError
from .vault import DEFAULT_KDF, KdfParams

__all__ = ["serve_rooms"]

_MAX_REQUEST_BYTES = 64 * 1024


def hypercorn_config(settings: Settings) -> Config:
    """The hypercorn configuration for ``settings``.

    Raises:
        SettingsError: a non-loopback bind without an admin key.
    """
    if not settings.is_loopback and not settings.admin_key:
        raise SettingsError(
            f"refusing to listen on {settings.host}: a non-loopback bind requires "
            "HIVEMIND_ADMIN_KEY"
        )
    config = Config()
    host = (
        f"[{settings.host}]"
        if ":" in settings.host and not settings.host.startswith("[")
        else settings.host
    )
    config.bind = [f"{host}:{settings.port}"]
    config.accesslog = None
    config.h11_max_incomplete_size = _MAX_REQUEST_BYTES
    config.keep_alive_timeout = 30
    config.graceful_timeout = 5
    return config


async def serve_rooms(
    settings: Settings,
    *,
    shutdown_trigger: Callable[[], Awaitable[Any]] | None = None,
    kdf: KdfParams = DEFAULT_KDF,
    attestation: Any = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the room service until cancelled or ``shutdown_trigger`` returns.

    Use ``await nursery.start(serve_rooms, settings)`` to learn the bound URLs
    (port 0 picks a free port).

    Every setting is checked before anything is opened or bound: the run
    engine's ``HIVEMIND_*`` variables are read here, once, and a bad value
    raises :class:`SettingsError` (naming the variable, the value and what is
    accepted) directly from this call, never from inside the server's tasks.

    Args:
        settings: Service configuration (host, port, admin key...).
        shutdown_trigger: Awaitable whose completion stops the server gracefully.
        kdf: Key-wrapping cost parameters.
        attestation: Attestation provider handed to the app.
        task_status: Receives the list of bound URLs once listening.

    Raises:
        SettingsError: a run setting holds an unusable value, or a
            non-loopback bind has no admin key.
    """
    engine_config = EngineConfig.from_env()
    config = hypercorn_config(settings)
    app = create_app(
        settings,
        kdf=kdf,
        attestation=attestation,
        run_engine=functools.partial(default_engine, config=engine_config),
    )
    await serve(app, config, shutdown_trigger=shutdown_trigger, task_status=task_status)
