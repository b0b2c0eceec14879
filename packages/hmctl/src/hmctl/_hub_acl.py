"""``hmctl hub``: message-type grants, skill/intent blacklists and metadata."""

from __future__ import annotations

import json
from typing import Any

import click

from ._hub import hub, node_id_argument, open_configured_store, parse_json_object, resolve_client
from ._runtime import InvalidValueError, get_runtime

__all__: list[str] = []


def _report(
    ctx: click.Context, client_id: int, name: str, changed: bool, text: str, **data: Any
) -> None:
    rt = get_runtime(ctx)
    label = f"Client {client_id} ({name})"
    line = f"{label}: {text}" if changed else f"{label}: already {text}"
    rt.emit(
        {"client_id": client_id, "changed": changed, **data},
        lambda c: c.print(line, markup=False, highlight=False),
    )


@hub.command("allow-msg")
@click.argument("msg_type")
@node_id_argument
@click.pass_context
def allow_msg(ctx: click.Context, msg_type: str, node_id: str | None) -> None:
    """Allow a message type to be sent by a client (takes effect on its next message)."""
    msg_type = validate_msg_type(msg_type)
    rt = get_runtime(ctx)
    with open_configured_store(rt) as store:
        client = resolve_client(rt, store, node_id)
        changed = msg_type not in client.allowed_types
        if changed:
            client = store.update(client.client_id, allowed_types=[*client.allowed_types, msg_type])
    _report(
        ctx,
        client.client_id,
        client.name,
        changed,
        f"allowed {msg_type!r}",
        allowed_types=list(client.allowed_types),
    )


@hub.command("blacklist-msg")
@click.argument("msg_type")
@node_id_argument
@click.pass_context
def blacklist_msg(ctx: click.Context, msg_type: str, node_id: str | None) -> None:
    """Remove a message type from a client's allowed list."""
    rt = get_runtime(ctx)
    with open_configured_store(rt) as store:
        client = resolve_client(rt, store, node_id)
        changed = msg_type in client.allowed_types
        if changed:
            remaining = [t for t in client.allowed_types if t != msg_type]
            client = store.update(client.client_id, allowed_types=remaining)
    _report(
        ctx,
        client.client_id,
        client.name,
        changed,
        f"not allowed {msg_type!r}",
        allowed_types=list(client.allowed_types),
    )


def _edit_meta_list(
    ctx: click.Context, node_id: str | None, key: str, item: str, add: bool
) -> None:
    rt = get_runtime(ctx)
    with open_configured_store(rt) as store:
        client = resolve_client(rt, store, node_id)
        current = [str(x) for x in client.metadata.get(key, []) or []]
        changed = (item not in current) if add else (item in current)
        if changed:
            updated = [*current, item] if add else [x for x in current if x != item]
            client = store.update(client.client_id, metadata={**client.metadata, key: updated})
    verb = "blacklisted" if add else "not blacklisted"
    _report(
        ctx,
        client.client_id,
        client.name,
        changed,
        f"{verb} {item!r}",
        **{key: list(client.metadata.get(key, []))},
    )


def _blacklist_command(name: str, key: str, argument: str, add: bool, doc: str) -> None:
    @hub.command(name, help=doc)
    @click.argument(argument)
    @node_id_argument
    @click.pass_context
    def command(ctx: click.Context, /, node_id: str | None, **kwargs: str) -> None:
        _edit_meta_list(ctx, node_id, key, kwargs[argument], add)


_BLACKLIST_COMMANDS = [
    (
        "blacklist-skill",
        "skill_blacklist",
        "skill_id",
        True,
        "Blacklist a skill for a client (OVOS agent policy).",
    ),
    (
        "allow-skill",
        "skill_blacklist",
        "skill_id",
        False,
        "Remove a skill from a client's blacklist (OVOS agent policy).",
    ),
    (
        "blacklist-intent",
        "intent_blacklist",
        "intent_id",
        True,
        "Blacklist an intent for a client (OVOS agent policy).",
    ),
    (
        "allow-intent",
        "intent_blacklist",
        "intent_id",
        False,
        "Remove an intent from a client's blacklist (OVOS agent policy).",
    ),
]
for _args in _BLACKLIST_COMMANDS:
    _blacklist_command(*_args)


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


@hub.command("set-metadata")
@node_id_argument
@click.option("--metadata", help="JSON object merged into the client's metadata.")
@click.option("--key", help="Metadata key to set (with --value).")
@click.option("--value", help="Value for --key; parsed as JSON when possible.")
@click.option("--unset", multiple=True, help="Metadata key to remove (repeatable).")
@click.pass_context
def set_metadata(
    ctx: click.Context,
    node_id: str | None,
    metadata: str | None,
    key: str | None,
    value: str | None,
    unset: tuple[str, ...],
) -> None:
    """Set metadata read by policy plugins: merge JSON, set one key, or unset keys."""
    if (key is None) != (value is None):
        raise click.UsageError("--key and --value must be given together")
    if metadata is None and key is None and not unset:
        raise click.UsageError("nothing to do: give --metadata, --key/--value or --unset")
    if key is not None and key in unset:
        raise click.UsageError(f"--key {key!r} conflicts with --unset {key!r}")
    merge = parse_json_object(metadata, "--metadata") if metadata is not None else {}
    rt = get_runtime(ctx)
    with open_configured_store(rt) as store:
        client = resolve_client(rt, store, node_id)
        new = {**client.metadata, **merge}
        if key is not None and value is not None:
            new[key] = _parse_value(value)
        for name in unset:
            new.pop(name, None)
        changed = new != dict(client.metadata)
        if changed:
            client = store.update(client.client_id, metadata=new)
    _report(
        ctx,
        client.client_id,
        client.name,
        changed,
        "metadata updated" if changed else "metadata as requested",
        metadata=dict(client.metadata),
    )


def validate_msg_type(msg_type: str) -> str:
    """Reject empty message types (used by the grant commands)."""
    if not msg_type.strip():
        raise InvalidValueError("MSG_TYPE must not be empty")
    return msg_type
