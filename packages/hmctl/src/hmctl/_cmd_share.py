"""``hmctl room share-link ...``: show, create, rotate and disable a room's share link.

A room has at most one share link (``hmroom://…&share=hms_…``). Everyone
holding it reaches the room with the narrower ``share`` role: read and verify
the room, ask it (paying with their own tenant key) and read the runs they
paid for; never upload a query agent, add data, mint links or see another
room. The service keeps only a digest of the share token, so the link text
is printed once, when it is minted (``create`` or ``rotate``); ``show``
reports whether a link exists and its prefix. ``disable`` (or deleting the
room) stops the link at once; ``rotate`` replaces it, so the old text stops
working.
"""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console

from ._cmd_room import _owner_target, room
from ._room_base import RoomGroup, json_option, kv_table, options, runtime
from ._runtime import Runtime

__all__ = ["share_link"]


@room.group("share-link", cls=RoomGroup)
def share_link() -> None:
    """Show, create, rotate or disable the room's share link (owner only)."""


def _view(answer: dict[str, Any], *, created: bool | None = None) -> dict[str, Any]:
    """The service's answer without the bare token (the link already carries it)."""
    data = {
        "room_id": answer["room_id"],
        "enabled": bool(answer.get("enabled")),
        "prefix": answer.get("prefix"),
        "created_at": answer.get("created_at"),
        "rotated_at": answer.get("rotated_at"),
        "link": answer.get("link") or None,
    }
    if created is not None:
        data["created"] = created
    return data


def _rows(data: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [("Room", str(data["room_id"])), ("Enabled", "yes" if data["enabled"] else "no")]
    if data["enabled"]:
        rows.append(("Prefix", str(data["prefix"])))
        rows.append(("Created", str(data["created_at"])))
        if data["rotated_at"]:
            rows.append(("Rotated", str(data["rotated_at"])))
    if data["link"]:
        rows.append(("Share link", str(data["link"])))
    return rows


def _emit(rt: Runtime, data: dict[str, Any], quiet: bool, note: str) -> None:
    if quiet and not rt.json_output:
        if data["link"]:
            click.echo(data["link"])
        else:
            rt.err_console.print(note, markup=False)
        return

    def human(c: Console) -> None:
        c.print(kv_table(_rows(data)))
        if note:
            c.print(note, markup=False)

    rt.emit(data, human)


def _once_note(room_id: str) -> str:
    return (
        "The link text is shown only when it is minted. Mint a new one (the old one "
        f"stops working) with: hmctl room share-link rotate {room_id}"
    )


_QUIET = click.option("-q", "--quiet", is_flag=True, help="Print only the link.")


@share_link.command("show")
@click.argument("room_ref", metavar="ROOM")
@json_option
@click.pass_context
def share_show(ctx: click.Context, room_ref: str) -> None:
    """Whether the room has a share link, and its prefix (the text is never shown again)."""
    rt = runtime(ctx)
    target = _owner_target(options(ctx), room_ref)
    with options(ctx).open(target) as api:
        data = _view(api.get(f"/v1/rooms/{target.room_id}/share-link"))
    note = _once_note(target.room_id) if data["enabled"] else ""
    _emit(rt, data, False, note)


@share_link.command("create")
@click.argument("room_ref", metavar="ROOM")
@_QUIET
@json_option
@click.pass_context
def share_create(ctx: click.Context, room_ref: str, quiet: bool) -> None:
    """Create the room's share link and print it (once).

    If the room already has one, nothing changes: the answer says so
    (created: false, no link) and "share-link rotate" mints a new text.
    """
    rt = runtime(ctx)
    target = _owner_target(options(ctx), room_ref)
    with options(ctx).open(target) as api:
        answer = api.request("POST", f"/v1/rooms/{target.room_id}/share-link")
    data = _view(answer, created=bool(answer.get("link")))
    note = (
        "Anyone holding this link can verify and ask the room, paying with their own key."
        if data["created"]
        else "This room already has a share link. " + _once_note(target.room_id)
    )
    _emit(rt, data, quiet, note)


@share_link.command("rotate")
@click.argument("room_ref", metavar="ROOM")
@_QUIET
@json_option
@click.pass_context
def share_rotate(ctx: click.Context, room_ref: str, quiet: bool) -> None:
    """Replace the share link with a new one; the old link stops working at once."""
    rt = runtime(ctx)
    target = _owner_target(options(ctx), room_ref)
    with options(ctx).open(target) as api:
        data = _view(api.request("POST", f"/v1/rooms/{target.room_id}/share-link/rotate"))
    _emit(rt, data, quiet, "The previous share link no longer works.")


@share_link.command("disable")
@click.argument("room_ref", metavar="ROOM")
@json_option
@click.pass_context
def share_disable(ctx: click.Context, room_ref: str) -> None:
    """Disable the share link (asks first unless -y); invites are not affected."""
    rt, opts = runtime(ctx), options(ctx)
    target = _owner_target(opts, room_ref)
    if not opts.yes:
        click.confirm(f"Disable the share link of {target.room_id}?", abort=True, err=True)
    with options(ctx).open(target) as api:
        data = _view(api.request("DELETE", f"/v1/rooms/{target.room_id}/share-link"))
    _emit(rt, data, False, "Holders of the share link can no longer reach the room.")
