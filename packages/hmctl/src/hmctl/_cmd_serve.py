"""``hmctl rooms serve`` (the room service) and ``hmctl up`` (hub and room service together)."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import secrets
import signal
from functools import partial
from pathlib import Path
from typing import Any

import click
import trio
from hivemind_rooms._serve import serve_rooms
from hivemind_rooms.attestation import load_or_create_dev_provider
from hivemind_rooms.settings import Settings, SettingsError

from ._room_base import RoomGroup, runtime
from ._runtime import InvalidValueError, Runtime
from .client import LocalState, Profile
from .client.state import atomic_write

__all__ = ["rooms", "up"]

_DEV_KEY_FILE = "attestation-dev-keys.json"


def default_data_dir() -> Path:
    """``HIVEMIND_DATA_DIR``, else ``$XDG_DATA_HOME/hivemind-rooms``."""
    explicit = os.environ.get("HIVEMIND_DATA_DIR", "").strip()
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "hivemind-rooms"


def _settings(
    host: str | None, port: int | None, data_dir: Path | None, admin_key: str | None
) -> Settings:
    """The service settings: ``HIVEMIND_*`` variables, then the options given."""
    try:
        base = Settings.from_env()
        data = data_dir or default_data_dir()
        data.mkdir(mode=0o700, parents=True, exist_ok=True)
        values: dict[str, Any] = {"data_dir": data}
        if host is not None:
            values["host"] = host
        if port is not None:
            values["port"] = port
        if admin_key is not None:
            values["admin_key"] = admin_key
        settings = dataclasses.replace(base, **values)
    except SettingsError as exc:
        raise InvalidValueError(str(exc)) from None
    if not settings.is_loopback and not settings.admin_key:
        raise InvalidValueError(
            f"refusing to listen on {settings.host}: a non-loopback bind requires an admin key\n"
            "hint: set HIVEMIND_ADMIN_KEY (at least 16 characters)"
        )
    return settings


def _run_service(main: Any, *args: Any) -> None:
    """``trio.run`` a service; a setting refused while starting is a usage error."""
    try:
        trio.run(main, *args)
    except* SettingsError as group:
        raise InvalidValueError(str(group.exceptions[0])) from None


def _dev_root(settings: Settings) -> str | None:
    if not (settings.data_dir / _DEV_KEY_FILE).is_file():
        return None
    return load_or_create_dev_provider(settings.data_dir, "{}").root_public_key_b64()


def _say(rt: Runtime, text: str) -> None:
    rt.console.print(text, markup=False, highlight=False, soft_wrap=True)


async def _until_signalled(nursery: trio.Nursery) -> None:
    """Wait for SIGINT or SIGTERM, then stop everything the nursery runs."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            break
    nursery.cancel_scope.cancel()


async def _serve_rooms_until_cancelled(rt: Runtime, settings: Settings) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_until_signalled, nursery)
        urls = await nursery.start(partial(serve_rooms, settings))
        _say(rt, f"Room service listening on {urls[0]}")
        root = _dev_root(settings)
        if root and settings.attestation_provider == "dev":
            _say(rt, f"Dev attestation root: {root}")
            _say(rt, f"Trust it on a client: hmctl trust dev-root add {root}")


@click.group("rooms", cls=RoomGroup)
def rooms() -> None:
    """Run the room service."""


@rooms.command("serve")
@click.option("--host", default=None, help="Bind address (default: HIVEMIND_HOST, else 127.0.0.1).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port, 0 for any (default: HIVEMIND_PORT, else 8100).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Databases and dev keys (default: $XDG_DATA_HOME/hivemind-rooms).",
)
@click.pass_context
def rooms_serve(
    ctx: click.Context, host: str | None, port: int | None, data_dir: Path | None
) -> None:
    """Serve the room service until interrupted (settings from HIVEMIND_* variables).

    Binding to anything but loopback requires HIVEMIND_ADMIN_KEY.
    """
    rt = runtime(ctx)
    settings = _settings(host, port, data_dir, None)
    with contextlib.suppress(KeyboardInterrupt):
        _run_service(_serve_rooms_until_cancelled, rt, settings)
    _say(rt, "stopped")


def _local_admin_key(data_dir: Path) -> str:
    """The admin key ``up`` uses: HIVEMIND_ADMIN_KEY, else one kept in the data dir."""
    explicit = os.environ.get("HIVEMIND_ADMIN_KEY", "").strip()
    if explicit:
        return explicit
    path = data_dir / "local-admin-key"
    if path.is_file():
        return path.read_text("utf-8").strip()
    key = "hmadmin_" + secrets.token_urlsafe(24)
    atomic_write(path, key + "\n")
    return key


async def _start_hub(rt: Runtime, nursery: trio.Nursery, port: int) -> str | None:
    try:
        serve_hub = importlib.import_module("hivemind_hub.serve").serve_hub
        load_config = importlib.import_module("hivemind_hub.config").load_config
    except (ImportError, AttributeError):
        _say(rt, "Hub: not available in this build (starting the room service alone)")
        return None
    config = load_config()
    config = dataclasses.replace(config, listen=dataclasses.replace(config.listen, port=port))
    serving = await nursery.start(partial(serve_hub, config))
    return f"ws://{config.listen.host}:{serving.port}"


async def _up(rt: Runtime, settings: Settings, hub_port: int, profile: str) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_until_signalled, nursery)
        urls = await nursery.start(partial(serve_rooms, settings))
        hub_url = await _start_hub(rt, nursery, hub_port)
        _next_steps(rt, settings, urls[0], hub_url, profile)


def _next_steps(
    rt: Runtime, settings: Settings, rooms_url: str, hub_url: str | None, profile: str
) -> None:
    state = LocalState()
    state.save_profile(Profile(profile, rooms_url, settings.admin_key, "admin"))
    root = _dev_root(settings)
    if root:
        state.add_dev_root(root)
    _say(rt, f"Room service: {rooms_url}  (dev attestation: answers are UNATTESTED)")
    if hub_url:
        _say(rt, f"Hub:          {hub_url}")
    _say(rt, f"Admin profile '{profile}' saved; dev root trusted: {root}")
    _say(rt, "Next, in another terminal (verify the service before any key is sent to it):")
    _say(rt, f"  hmctl -y trust attest --service {rooms_url}")
    _say(rt, f"  KEY=$(hmctl --profile {profile} admin tenants create alice -q)")
    _say(rt, f'  hmctl --profile alice init --service {rooms_url} --api-key "$KEY"')
    _say(rt, "  hmctl --profile alice room create ./agents/default-scope --name demo --no-llm")
    _say(rt, "Ready. Press Ctrl-C to stop.")


@click.command("up", cls=rooms.command_class)
@click.option(
    "--rooms-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Room service port, 0 for any (default: HIVEMIND_PORT, else 8100).",
)
@click.option(
    "--hub-port",
    type=click.IntRange(0, 65535),
    default=5678,
    show_default=True,
    help="Hub websocket port (0: any).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Room service data (default: $XDG_DATA_HOME/hivemind-rooms).",
)
@click.option(
    "--admin-profile",
    default="local-admin",
    show_default=True,
    help="Profile saved with the local admin key.",
)
@click.pass_context
def up(
    ctx: click.Context,
    rooms_port: int | None,
    hub_port: int,
    data_dir: Path | None,
    admin_profile: str,
) -> None:
    """Run a hub and a room service on loopback in one process, with embedded defaults.

    Saves an admin profile for the local room service, trusts its dev
    attestation root, and prints the next commands to run.
    """
    rt = runtime(ctx)
    data = data_dir or default_data_dir()
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    settings = _settings("127.0.0.1", rooms_port, data, _local_admin_key(data))
    with contextlib.suppress(KeyboardInterrupt):
        _run_service(_up, rt, settings, hub_port, admin_profile)
    _say(rt, "stopped")
