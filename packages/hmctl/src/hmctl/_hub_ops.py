"""``hmctl hub``: configuration, database migration, export, policy dry-runs, ``listen``."""

from __future__ import annotations

import csv
import dataclasses
import importlib
import io
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
from hivemind_hub import load_config, migrate_store, open_store
from hivemind_hub.config import BACKEND_MODULES, config_path, write_config
from hivemind_hub.policy import build_policy_chain

from ._hub import BACKEND_CHOICE, database_for, hub, open_configured_store, resolve_client
from ._runtime import UnavailableError, get_runtime

__all__: list[str] = []

_SECRET_KEYS = frozenset({"password", "key", "crypto_key", "api_key", "secret", "token"})


def redact(tree: Any) -> Any:
    """Return a copy of a config tree with secret-looking values replaced."""
    if isinstance(tree, Mapping):
        return {k: ("********" if k in _SECRET_KEYS and v else redact(v)) for k, v in tree.items()}
    if isinstance(tree, list):
        return [redact(v) for v in tree]
    return tree


@hub.command("print-config")
@click.option("--show-secrets", is_flag=True, help="Do not mask passwords and keys.")
@click.pass_context
def print_config(ctx: click.Context, show_secrets: bool) -> None:
    """Print server.json merged with the defaults, as JSON."""
    config = load_config()
    tree = dict(config.raw) if show_secrets else redact(dict(config.raw))
    click.echo(json.dumps(tree, indent=2, sort_keys=False, ensure_ascii=False))
    get_runtime(ctx).err_console.print(f"# {config.path}", markup=False, highlight=False)


@hub.command("migrate-db")
@click.option("--from", "source", type=BACKEND_CHOICE, default="json", show_default=True)
@click.option("--to", "target", type=BACKEND_CHOICE, default="sqlite", show_default=True)
@click.option("--set-default", is_flag=True, help="Point server.json at the target afterwards.")
@click.pass_context
def migrate_db(ctx: click.Context, source: str, target: str, set_default: bool) -> None:
    """Copy every client from one database backend to another (the source is untouched)."""
    if source == target:
        raise click.UsageError("--from and --to must name different backends")
    rt = get_runtime(ctx)
    config = load_config()
    src = open_store(database_for(config, source))
    try:
        dst = open_store(database_for(config, target))
        try:
            count = migrate_store(src, dst)
        finally:
            dst.close()
    finally:
        src.close()
    if set_default:
        tree = dict(config.raw)
        module = BACKEND_MODULES[target]
        database = dict(tree.get("database") or {})
        database["module"] = module
        database.setdefault(module, {"name": "clients", "subfolder": "hivemind-core"})
        tree["database"] = database
        write_config(tree, config.path or config_path())
    rt.emit(
        {"from": source, "to": target, "migrated": count, "set_default": set_default},
        lambda c: c.print(f"Migrated {count} client(s) from {source} to {target}", markup=False),
    )
    if not set_default and config.database.backend != target:
        rt.notice(f"server.json still uses {config.database.backend}; rerun with --set-default")


@hub.command("export-clients")
@click.option(
    "--path",
    type=click.Path(path_type=Path),
    help="CSV file, or directory for hivemind_clients.csv (default: stdout).",
)
@click.pass_context
def export_clients(ctx: click.Context, path: Path | None) -> None:
    """Export credentials as CSV (client_id,name,is_admin,access_key,password).

    The legacy crypto key is not exported. The file is created readable by
    its owner only.
    """
    rt = get_runtime(ctx)
    with open_configured_store(rt) as store:
        clients = [c for c in store.list_clients() if not c.is_revoked]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["client_id", "name", "is_admin", "access_key", "password"])
    for c in clients:
        writer.writerow([c.client_id, c.name, c.is_admin, c.api_key, c.password or ""])
    if path is None:
        click.echo(buffer.getvalue(), nl=False)
        return
    target = path / "hivemind_clients.csv" if path.is_dir() else path
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(buffer.getvalue())
    rt.notice(f"Exported {len(clients)} client(s) to {target}")


@hub.group("policy")
def policy() -> None:
    """Inspect the policy admission chain."""


@policy.command("list")
@click.pass_context
def policy_list(ctx: click.Context) -> None:
    """Show the chain built from server.json, in review order."""
    chain = build_policy_chain(load_config().policy_chain)
    data = {"chain": chain.names, "degraded_reason": chain.degraded_reason}

    def human(console: Any) -> None:
        for index, name in enumerate(chain.names, 1):
            console.print(f"{index}. {name}", markup=False)
        if chain.degraded_reason:
            console.print(f"DENY-ALL: {chain.degraded_reason}", markup=False)

    get_runtime(ctx).emit(data, human)


@policy.command("test")
@click.argument("node_id")
@click.argument("msg_type")
@click.option("--session-id", default=None, help="Declared context.session.session_id.")
@click.pass_context
def policy_test(ctx: click.Context, node_id: str, msg_type: str, session_id: str | None) -> None:
    """Dry-run the chain for a client (id or access key) sending MSG_TYPE."""
    rt = get_runtime(ctx)
    chain = build_policy_chain(load_config().policy_chain)
    with open_configured_store(rt) as store:
        client = resolve_client(rt, store, node_id)
    context: dict[str, Any] = {}
    if session_id is not None:
        context["session"] = {"session_id": session_id}
    message = {"type": msg_type, "data": {}, "context": context}
    decision = chain.review(client, message)
    data = {
        "denied": not decision.allowed,
        "code": decision.code,
        "reason": decision.reason,
        "data": dict(decision.data),
        "message": decision.message,
    }
    verdict = "allowed" if decision.allowed else f"denied ({decision.code}: {decision.reason})"
    rt.emit(data, lambda c: c.print(f"{msg_type}: {verdict}", markup=False, highlight=False))


@hub.command("listen")
@click.option("--host", default=None, help="Bind address (default from server.json).")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Port to listen on.")
@click.pass_context
def listen(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Start the hub and serve clients until interrupted."""
    config = load_config()
    listen_cfg = config.listen
    if host is not None:
        listen_cfg = dataclasses.replace(listen_cfg, host=host)
    if port is not None:
        listen_cfg = dataclasses.replace(listen_cfg, port=port)
    config = dataclasses.replace(config, listen=listen_cfg)
    try:
        run_hub = importlib.import_module("hivemind_hub.serve").run_hub
    except (ImportError, AttributeError) as exc:
        raise UnavailableError("the hub server is not available in this build") from exc
    run_hub(config)
