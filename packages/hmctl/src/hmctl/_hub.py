"""``hmctl hub``: the hub group, client selection and credential commands."""

from __future__ import annotations

import json
import math
import secrets
import string
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from hivemind_hub import Client, HubConfig, load_config, open_store
from hivemind_hub.config import BACKEND_MODULES, DatabaseConfig
from hivemind_hub.store import BaseClientStore
from rich.console import Console
from rich.table import Table

from ._runtime import (
    HubGroup,
    InvalidValueError,
    NotFoundError,
    Runtime,
    get_runtime,
)

__all__ = ["client_summary", "hub", "open_configured_store", "resolve_client"]

BACKEND_CHOICE = click.Choice(sorted(BACKEND_MODULES))


@click.group(cls=HubGroup)
@click.option("--json", "json_output", is_flag=True, help="Print machine-readable JSON.")
@click.option(
    "--db-backend",
    type=BACKEND_CHOICE,
    default=None,
    help="Use this client database instead of the one in server.json.",
)
@click.pass_context
def hub(ctx: click.Context, json_output: bool, db_backend: str | None) -> None:
    """Manage hub credentials, permissions and databases, and run the hub."""
    rt = get_runtime(ctx)
    rt.json_output = rt.json_output or json_output
    rt.db_backend = db_backend or rt.db_backend


# -- shared helpers ----------------------------------------------------------------


def _set_backend(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        get_runtime(ctx).db_backend = value


def _set_json(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        get_runtime(ctx).json_output = True


def add_common_options(group: click.Group) -> None:
    """Give every command of ``group`` the ``--db-backend`` and ``--json`` options.

    Upstream scripts pass ``--db-backend`` after the command name
    (``hivemind-core add-client --db-backend sqlite``); both positions work.
    """
    for command in group.commands.values():
        if isinstance(command, click.Group):
            add_common_options(command)
            continue
        names = {opt for p in command.params for opt in getattr(p, "opts", [])}
        if "--db-backend" not in names:
            command.params.append(
                click.Option(
                    ["--db-backend"],
                    type=BACKEND_CHOICE,
                    expose_value=False,
                    callback=_set_backend,
                    help="Use this client database instead of the one in server.json.",
                )
            )
        if "--json" not in names:
            command.params.append(
                click.Option(
                    ["--json"],
                    is_flag=True,
                    expose_value=False,
                    callback=_set_json,
                    help="Print machine-readable JSON.",
                )
            )


def database_for(config: HubConfig, backend: str | None) -> DatabaseConfig:
    """Return the database to open: the configured one, or ``backend``'s block."""
    if backend is None:
        return config.database
    module = BACKEND_MODULES[backend]
    database = config.raw.get("database", {})
    options = database.get(module) if isinstance(database, dict) else None
    if not isinstance(options, dict):
        options = {"name": "clients", "subfolder": "hivemind-core"}
    return DatabaseConfig(module=module, options=options)


@contextmanager
def open_configured_store(rt: Runtime) -> Iterator[BaseClientStore]:
    """Open the client database selected by ``server.json`` / ``--db-backend``."""
    config = load_config()
    store = open_store(database_for(config, rt.db_backend))
    try:
        yield store
    finally:
        store.close()


def mask(value: str | None, show: bool, keep: int = 0) -> str | None:
    """Hide a secret unless ``show``; ``keep`` leading characters stay visible."""
    if value is None or show:
        return value
    if not value:
        return ""
    return value[:keep] + "…" if keep else "********"


def client_summary(client: Client, show_secrets: bool = False) -> dict[str, Any]:
    """The JSON form of a client for CLI output (secrets masked by default)."""
    data = client.to_dict()
    data["api_key"] = "revoked" if client.is_revoked else mask(client.api_key, show_secrets, 4)
    data["password"] = mask(client.password, show_secrets)
    data["crypto_key"] = mask(client.crypto_key, show_secrets)
    data["revoked"] = client.is_revoked
    return data


def _selection_table(clients: list[Client]) -> Table:
    table = Table(title="HiveMind clients")
    for column in ("ID", "Name", "Allowed Msg Types"):
        table.add_column(column)
    for c in clients:
        table.add_row(str(c.client_id), c.name, ", ".join(c.allowed_types) or "(none: deny all)")
    return table


def _prompt_client(rt: Runtime, store: BaseClientStore) -> Client:
    live = [c for c in store.list_clients() if not c.is_revoked]
    if not live:
        raise NotFoundError("the client database is empty; create one with add-client")
    if len(live) == 1:
        rt.notice(f"Only one client: selected {live[0].client_id} ({live[0].name})")
        return live[0]
    rt.err_console.print(_selection_table(live))
    choices = [str(c.client_id) for c in live] + ["exit"]
    answer = click.prompt(
        "Select a client ID", type=click.Choice(choices), show_choices=True, err=True
    )
    if answer == "exit":
        raise click.Abort()
    return next(c for c in live if str(c.client_id) == answer)


def resolve_client(rt: Runtime, store: BaseClientStore, node_id: str | None) -> Client:
    """Find the client named by NODE_ID (an id or an access key), or prompt for one.

    Raises:
        NotFoundError: Nothing matches.
    """
    if node_id is None:
        return _prompt_client(rt, store)
    if node_id.isdigit():
        client = store.get(int(node_id))
        if client is not None and not client.is_revoked:
            return client
    client = store.get_by_access_key(node_id)
    if client is not None:
        return client
    raise NotFoundError(f"no client matches NODE_ID {node_id!r}")


node_id_argument = click.argument("node_id", required=False)


def parse_json_object(text: str, option: str) -> dict[str, Any]:
    """Parse a JSON object given on the command line.

    Raises:
        InvalidValueError: The text is not a JSON object.
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidValueError(f"{option}: not valid JSON ({exc.msg})") from exc
    if not isinstance(value, dict):
        raise InvalidValueError(f"{option}: expected a JSON object")
    return value


def password_bits(password: str) -> float:
    """A rough entropy estimate: length times log2 of the character pool used."""
    pools = [string.ascii_lowercase, string.ascii_uppercase, string.digits, string.punctuation]
    size = sum(len(p) for p in pools if any(ch in p for ch in password))
    size += 1 if any(not any(ch in p for p in pools) for ch in password) else 0
    return len(password) * math.log2(size) if size > 1 else 0.0


# -- credential commands ------------------------------------------------------------


def _print_credentials(console: Console, client: Client, created: bool) -> None:
    console.print("Credentials added to database!" if created else "Credentials updated!")
    rows = [
        ("Node ID", str(client.client_id)),
        ("Admin Privileges", str(client.is_admin)),
        ("Friendly Name", client.name),
        ("Access Key", client.api_key),
        ("Password", client.password or "(none)"),
    ]
    if client.crypto_key:
        rows.append(("Encryption Key", client.crypto_key))
    for label, value in rows:
        console.print(f"{label}: {value}", markup=False, highlight=False)
    console.print("Keep these values: the client devices need them to connect.")


@hub.command("add-client")
@click.option("--name", help="Friendly name (default HiveMind-Node-<n>).")
@click.option("--access-key", help="Access key (default: 32 random hex characters).")
@click.option("--password", help="Password (default: 32 random hex characters).")
@click.option("--crypto-key", help="Deprecated legacy pre-shared key, exactly 16 characters.")
@click.option(
    "--admin",
    type=click.BOOL,
    default=None,
    is_flag=False,
    flag_value=True,
    help="Admin flag (default false; kept unchanged when updating).",
)
@click.option("--description", default=None, help="Free text description.")
@click.option("--metadata", help="JSON object of policy metadata.")
@click.option("--allow", "allow", multiple=True, help="Grant a message type (repeatable).")
@click.option("--allow-weak-password", is_flag=True, help="Accept a guessable password.")
@click.pass_context
def add_client(
    ctx: click.Context,
    name: str | None,
    access_key: str | None,
    password: str | None,
    crypto_key: str | None,
    admin: bool | None,
    description: str | None,
    metadata: str | None,
    allow: tuple[str, ...],
    allow_weak_password: bool,
) -> None:
    """Add credentials for a client (updates the client owning --access-key)."""
    rt = get_runtime(ctx)
    meta = parse_json_object(metadata, "--metadata") if metadata is not None else None
    if crypto_key is not None:
        if len(crypto_key) != 16:
            raise InvalidValueError("--crypto-key must be exactly 16 characters")
        rt.warn("--crypto-key is deprecated: only use it for clients that cannot do the password")
        rt.warn("handshake. The key is static and weak (64 bits when hex); prefer --password.")
    config = load_config()
    if password is not None and not allow_weak_password:
        bits = password_bits(password)
        if config.runtime_password_strength_check and bits < config.min_password_bits:
            raise InvalidValueError(
                f"--password is too weak (~{bits:.0f} bits, need {config.min_password_bits}); "
                "pass --allow-weak-password to accept it"
            )
    with open_configured_store(rt) as store:
        existing = store.get_by_access_key(access_key) if access_key else None
        if existing is not None:
            # Upsert: change only what was given on the command line.
            given: dict[str, Any] = {
                "name": name,
                "is_admin": admin,
                "password": password,
                "crypto_key": crypto_key,
                "description": description,
                "metadata": {**existing.metadata, **meta} if meta else None,
                "allowed_types": [*existing.allowed_types, *allow] if allow else None,
            }
            changes = {k: v for k, v in given.items() if v is not None}
            client = store.update(existing.client_id, **changes)
        else:
            client = store.create(
                api_key=access_key or secrets.token_hex(16),
                name=name or f"HiveMind-Node-{len(store)}",
                description=description or "",
                metadata=meta or {},
                allowed_types=list(allow),
                is_admin=bool(admin),
                password=password or secrets.token_hex(16),
                crypto_key=crypto_key,
            )
    summary = client_summary(client, show_secrets=True)
    summary["created"] = existing is None
    rt.emit(summary, lambda c: _print_credentials(c, client, existing is None))
    if not client.allowed_types:
        rt.notice(
            "Note: this client may not send anything yet (deny by default, admins included). "
            f'Grant types with: hmctl hub allow-msg "recognizer_loop:utterance" {client.client_id}'
        )


def _list_table(clients: list[Client], show: bool) -> Table:
    table = Table(title="HiveMind clients")
    for column in ("ID", "Name", "Admin", "Access Key", "Password", "Crypto Key", "Allowed Types"):
        table.add_column(column, overflow="fold")
    for c in clients:
        s = client_summary(c, show)
        table.add_row(
            str(c.client_id),
            c.name,
            "yes" if c.is_admin else "no",
            s["api_key"],
            s["password"] or "-",
            s["crypto_key"] or "-",
            ", ".join(c.allowed_types) or "(none)",
        )
    return table


@hub.command("list-clients")
@click.option("--show-secrets", is_flag=True, help="Print access keys and passwords in clear.")
@click.pass_context
def list_clients(ctx: click.Context, show_secrets: bool) -> None:
    """List clients (secrets masked unless --show-secrets)."""
    rt = get_runtime(ctx)
    with open_configured_store(rt) as store:
        clients = store.list_clients()
    data = [client_summary(c, show_secrets) for c in clients]
    rt.emit(data, lambda console: console.print(_list_table(clients, show_secrets)))


@hub.command("delete-client")
@node_id_argument
@click.pass_context
def delete_client(ctx: click.Context, node_id: str | None) -> None:
    """Delete a client: its credentials stop working at once; its id is never reused."""
    rt = get_runtime(ctx)
    with open_configured_store(rt) as store:
        client = resolve_client(rt, store, node_id)
        store.delete(client.client_id)
    rt.emit(
        {"deleted": client.client_id, "name": client.name},
        lambda c: c.print(f"Client {client.client_id} ({client.name}) deleted", markup=False),
    )


@hub.command("rename-client")
@node_id_argument
@click.option("--name", required=True, help="The new friendly name.")
@click.pass_context
def rename_client(ctx: click.Context, node_id: str | None, name: str) -> None:
    """Rename a client."""
    _set_fields(ctx, node_id, {"name": name}, f"renamed to {name!r}")


def _set_fields(
    ctx: click.Context, node_id: str | None, changes: dict[str, Any], what: str
) -> None:
    rt = get_runtime(ctx)
    with open_configured_store(rt) as store:
        client = resolve_client(rt, store, node_id)
        unchanged = all(getattr(client, k) == v for k, v in changes.items())
        if not unchanged:
            client = store.update(client.client_id, **changes)
    label = f"Client {client.client_id} ({client.name})"
    message = f"{label}: already {what}" if unchanged else f"{label}: {what}"
    rt.emit(
        {"client_id": client.client_id, "changed": not unchanged, **changes},
        lambda c: c.print(message, markup=False, highlight=False),
    )


def _flag_command(name: str, field_name: str, value: bool, what: str, doc: str) -> None:
    @hub.command(name, help=doc)
    @node_id_argument
    @click.pass_context
    def command(ctx: click.Context, node_id: str | None) -> None:
        _set_fields(ctx, node_id, {field_name: value}, what)


_FLAG_COMMANDS = [
    ("make-admin", "is_admin", True, "an admin", "Grant administrator privileges to a client."),
    ("revoke-admin", "is_admin", False, "not an admin", "Revoke administrator privileges."),
    ("allow-escalate", "can_escalate", True, "allowed to escalate", "Allow ESCALATE messages."),
    ("blacklist-escalate", "can_escalate", False, "denied escalate", "Deny ESCALATE messages."),
    ("allow-propagate", "can_propagate", True, "allowed to propagate", "Allow PROPAGATE."),
    ("blacklist-propagate", "can_propagate", False, "denied propagate", "Deny PROPAGATE."),
    ("allow-broadcast", "can_broadcast", True, "allowed to broadcast", "Allow BROADCAST."),
    ("blacklist-broadcast", "can_broadcast", False, "denied broadcast", "Deny BROADCAST."),
]
for _args in _FLAG_COMMANDS:
    _flag_command(*_args)
