"""``hmctl rooms peers ...``: the hubs allowed to link to this room service.

A peer hub links to the service's HiveMind endpoint with the access key and
password printed by ``add`` (put them in the hub's ``upstream`` config) and
may relay only the ``hivemind.room.*`` request types it was granted.
"""

from __future__ import annotations

from pathlib import Path

import click
from hivemind_rooms.hive import ROOM_TYPES, PeerStore
from rich.console import Console

from ._cmd_serve import default_data_dir, rooms
from ._room_base import runtime
from .client.errors import UsageProblem

__all__ = ["peers"]

_DATA_DIR = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The room service's data directory (default: $XDG_DATA_HOME/hivemind-rooms).",
)


def _store(data_dir: Path | None) -> PeerStore:
    path = data_dir or default_data_dir()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return PeerStore(path)


@rooms.group("peers")
def peers() -> None:
    """Manage the hubs that may link to this room service."""


@peers.command("add")
@click.argument("name")
@click.option(
    "--type",
    "types",
    multiple=True,
    type=click.Choice(ROOM_TYPES),
    help="A request type the hub may relay (repeat; default: all).",
)
@_DATA_DIR
@click.pass_context
def peers_add(ctx: click.Context, name: str, types: tuple[str, ...], data_dir: Path | None) -> None:
    """Register hub NAME and print its new access key and password (shown once)."""
    rt = runtime(ctx)
    store = _store(data_dir)
    try:
        peer = store.add(name, allowed_types=types or ROOM_TYPES)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None
    finally:
        store.close()
    data = {
        "name": peer.name,
        "access_key": peer.access_key,
        "password": peer.password,
        "allowed_types": list(peer.allowed_types),
    }

    def human(c: Console) -> None:
        c.print(f"peer hub {peer.name!r} registered; in the hub's upstream config use:")
        c.print(f"  key: {peer.access_key}", markup=False)
        c.print(f"  password: {peer.password}", markup=False)

    rt.emit(data, human)


@peers.command("list")
@_DATA_DIR
@click.pass_context
def peers_list(ctx: click.Context, data_dir: Path | None) -> None:
    """List the registered peer hubs (never their secrets)."""
    rt = runtime(ctx)
    store = _store(data_dir)
    try:
        rows = [{"name": p.name, "allowed_types": list(p.allowed_types)} for p in store.list()]
    finally:
        store.close()

    def human(c: Console) -> None:
        for row in rows:
            c.print(f"{row['name']}: {', '.join(row['allowed_types'])}", markup=False)
        if not rows:
            c.print("no peer hubs")

    rt.emit(rows, human)


@peers.command("remove")
@click.argument("name")
@_DATA_DIR
@click.pass_context
def peers_remove(ctx: click.Context, name: str, data_dir: Path | None) -> None:
    """Remove hub NAME; its link is refused from its next request on."""
    rt = runtime(ctx)
    store = _store(data_dir)
    try:
        removed = store.remove(name)
    finally:
        store.close()
    if not removed:
        raise UsageProblem(f"no peer hub named {name!r}")
    rt.emit({"removed": name}, lambda c: c.print(f"peer hub {name!r} removed", markup=False))
