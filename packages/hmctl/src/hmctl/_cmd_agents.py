"""``hmctl agents ...`` (the tenant's room agents) and ``hmctl runs ...`` (run records)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from hivemind_rooms.attestation.run import RunAttestationError, verify_run_signature
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ._room_base import RoomGroup, json_option, kv_table, options, runtime
from .client import (
    AttestationInvalid,
    UsageProblem,
    artifact_names,
    fetch_artifacts,
    resolve_target,
    run_stage,
)
from .client.rooms import upload_agent
from .client.verify import VerifiedService

__all__ = ["agents", "runs"]

_TYPES = click.Choice(["scope", "query", "mediator"])


@click.group("agents", cls=RoomGroup)
def agents() -> None:
    """Upload, list, inspect and delete room agents."""


@agents.command("upload")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--type", "agent_type", type=_TYPES, required=True, help="The stage it serves.")
@click.option("--name", default=None, help="Agent name (default: the directory name).")
@click.option(
    "--visibility",
    type=click.Choice(["inspectable", "sealed"]),
    default="inspectable",
    show_default=True,
    help="Sealed agents show paths and digests, never source.",
)
@click.option(
    "--private",
    "private_paths",
    multiple=True,
    help="Path kept out of the attested digest (repeatable).",
)
@click.option("--timeout", type=click.IntRange(1, 86400), default=None, help="Run timeout (s).")
@click.option("--memory-mb", type=click.IntRange(16), default=None, help="Memory limit (MiB).")
@json_option
@click.pass_context
def agents_upload(ctx: click.Context, path: Path, **o: Any) -> None:
    """Upload an agent directory (with a Dockerfile) or .tar.gz archive."""
    rt = runtime(ctx)
    with options(ctx).api() as api:
        agent_id = upload_agent(
            api,
            path,
            agent_type=o["agent_type"],
            visibility=o["visibility"],
            name=o["name"],
            private_paths=o["private_paths"],
            timeout_seconds=o["timeout"],
            memory_mb=o["memory_mb"],
        )
    rt.emit({"agent_id": agent_id}, lambda c: c.print(f"Uploaded {agent_id}", markup=False))


@agents.command("list")
@click.option("--type", "agent_type", type=_TYPES, default=None, help="Only this stage.")
@json_option
@click.pass_context
def agents_list(ctx: click.Context, agent_type: str | None) -> None:
    """List the tenant's agents, newest first."""
    rt = runtime(ctx)
    with options(ctx).api() as api:
        found = api.get("/v1/room-agents", type=agent_type)

    def human(c: Console) -> None:
        table = Table("AGENT", "NAME", "TYPE", "INSPECTION", "TIMEOUT")
        for a in found:
            table.add_row(
                a["agent_id"],
                Text(str(a["name"])),
                a["agent_type"],
                a["inspection_mode"],
                str(a.get("timeout_seconds", "")),
            )
        c.print(table)

    rt.emit({"agents": found}, human)


@agents.command("inspect")
@click.argument("agent_id")
@json_option
@click.pass_context
def agents_inspect(ctx: click.Context, agent_id: str) -> None:
    """Show an agent's configuration and file digests."""
    rt = runtime(ctx)
    with options(ctx).api() as api:
        view = api.get(f"/v1/room-agents/{agent_id}/attest")
    view.pop("attestation", None)
    config = view.get("agent", {})
    rows = [
        ("Agent", view["agent_id"]),
        ("Name", str(config.get("name", ""))),
        ("Type", str(config.get("agent_type", ""))),
        ("Inspection", str(view.get("inspection_mode"))),
        ("Files", str(view.get("files_count"))),
        ("Files digest", str(view.get("files_digest_sha256"))),
        ("Attested files", str(view.get("attested_files_count"))),
        ("Attested digest", str(view.get("attested_files_digest_sha256"))),
    ]
    rt.emit(view, lambda c: c.print(kv_table(rows)))


@agents.command("files")
@click.argument("agent_id")
@click.argument("path", required=False)
@json_option
@click.pass_context
def agents_files(ctx: click.Context, agent_id: str, path: str | None) -> None:
    """List an agent's files, or print one file (inspectable agents only)."""
    rt = runtime(ctx)
    with options(ctx).api() as api:
        if path is not None:
            content = api.request("GET", f"/v1/room-agents/{agent_id}/files/{path}", raw=True)
            text = content.decode("utf-8", "replace")
            rt.emit({"path": path, "content": text}, lambda c: click.echo(text, nl=False))
            return
        files = api.get(f"/v1/room-agents/{agent_id}/files")["files"]

    def human(c: Console) -> None:
        table = Table("PATH", "SIZE", "ATTESTED")
        for f in files:
            table.add_row(Text(f["path"]), str(f["size_bytes"]), "yes" if f["attestable"] else "no")
        c.print(table)

    rt.emit({"agent_id": agent_id, "files": files}, human)


@agents.command("delete")
@click.argument("agent_id")
@json_option
@click.pass_context
def agents_delete(ctx: click.Context, agent_id: str) -> None:
    """Delete an agent (refused while a live room uses it)."""
    rt, opts = runtime(ctx), options(ctx)
    if not opts.yes:
        click.confirm(f"Delete agent {agent_id}?", abort=True, err=True)
    with opts.api() as api:
        result = api.request("DELETE", f"/v1/room-agents/{agent_id}")
    rt.emit(
        {**result, "agent_id": agent_id}, lambda c: c.print(f"Deleted {agent_id}", markup=False)
    )


# -- runs -----------------------------------------------------------------------------


@click.group("runs", cls=RoomGroup)
def runs() -> None:
    """List and show runs, fetch their artifacts."""


def _runs_api(ctx: click.Context, room: str | None) -> Any:
    """The owner's client, or the link's client for an hmroom:// invite or share link."""
    opts = options(ctx)
    if room:
        target = resolve_target(opts.state, opts.maybe_profile(), room)
        return opts.open(target)
    return opts.api()


def _runs_service(ctx: click.Context, room: str | None) -> VerifiedService:
    """The verified service ``_runs_api`` talks to (cached for the invocation)."""
    opts = options(ctx)
    if room:
        return opts.verified(resolve_target(opts.state, opts.maybe_profile(), room).service)
    return opts.verified(opts.load_profile().service)


def _signed_body(run: dict[str, Any], service: VerifiedService) -> dict[str, Any] | None:
    """The run's attestation body, its signature checked, to check downloads against.

    ``runs artifacts`` does not know the question, so it cannot verify the
    whole attestation; it checks that the attested run signer of the verified
    service signed it, then refuses downloads that differ from the artifact
    records in it. None when attestations are skipped or the run is unsigned.

    Raises:
        AttestationInvalid: the attestation is not the attested signer's.
    """
    att = run.get("attestation")
    if service.attestation is None or not att:
        return None
    try:
        return verify_run_signature(
            att, signer_pubkey_b64=service.attestation.run_signer_pubkey_b64
        )
    except RunAttestationError as exc:
        raise AttestationInvalid(
            f"run attestation check failed: {exc.field}",
            hint="do not trust these artifacts",
        ) from None


@runs.command("list")
@click.option("--room", default=None, help="List through this invite or share link (participants).")
@click.option(
    "--limit", type=click.IntRange(1, 100), default=20, show_default=True, help="Most runs."
)
@json_option
@click.pass_context
def runs_list(ctx: click.Context, room: str | None, limit: int) -> None:
    """List recent runs (owner: the tenant's; --room LINK: those the link may see).

    Through an invite link: the runs of that invite. Through a share link: the
    runs of that room paid by this profile's tenant key.
    """
    rt = runtime(ctx)
    with _runs_api(ctx, room) as api:
        found = api.get("/v1/runs", limit=limit)

    def human(c: Console) -> None:
        table = Table("RUN", "ROOM", "STATUS", "STAGE", "CREATED")
        for r in found:
            table.add_row(
                r["run_id"],
                str(r.get("room_id") or ""),
                str(r["status"]),
                run_stage(r),
                str(r.get("created_at")),
            )
        c.print(table)

    rt.emit({"runs": found}, human)


@runs.command("show")
@click.argument("run_id")
@click.option("--room", default=None, help="Read through this invite or share link (participants).")
@json_option
@click.pass_context
def runs_show(ctx: click.Context, run_id: str, room: str | None) -> None:
    """Show one run (output, error, stages, attestation presence)."""
    rt = runtime(ctx)
    with _runs_api(ctx, room) as api:
        run = api.get(f"/v1/runs/{run_id}")
    rows = [
        ("Run", run["run_id"]),
        ("Room", str(run.get("room_id") or "-")),
        ("Status", str(run["status"])),
        ("Stage", run_stage(run)),
        ("Signed", "yes" if run.get("attestation") else "no"),
        ("Output", "(redacted)" if run.get("payload_redacted") else str(run.get("output") or "")),
        ("Error", str(run.get("error") or "-")),
    ]
    rt.emit(run, lambda c: c.print(kv_table(rows)))


@runs.command("artifacts")
@click.argument("run_id")
@click.option("--room", default=None, help="Read through this invite or share link (participants).")
@click.option(
    "--fetch",
    "target",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Download them into this directory.",
)
@json_option
@click.pass_context
def runs_artifacts(ctx: click.Context, run_id: str, room: str | None, target: Path | None) -> None:
    """List a run's artifacts, or download them with --fetch DIR."""
    rt = runtime(ctx)
    with _runs_api(ctx, room) as api:
        run = api.get(f"/v1/runs/{run_id}")
        items = artifact_names(run)
        if target is not None and not items:
            raise UsageProblem(f"run {run_id} has no artifacts you can see")
        fetched = (
            fetch_artifacts(api, run, target, signed=_signed_body(run, _runs_service(ctx, room)))
            if target is not None
            else []
        )

    def human(c: Console) -> None:
        table = Table("FILE")
        for name in items:
            table.add_row(Text(name))
        c.print(table)
        for f in fetched:
            c.print(f"saved {f['path']}", markup=False)

    rt.emit({"run_id": run_id, "artifacts": items, "fetched": fetched}, human)
