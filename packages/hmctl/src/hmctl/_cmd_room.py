"""``hmctl room ...``: create, invite, inspect, accept, ask, data, trust, list, prune, delete.

Every command that takes a ROOM accepts an ``hmroom://`` invite link
(``token=hmq_…``), the room's share link (``share=hms_…``) or, for the
owner, a bare room id. The owner's ``room share-link`` commands live in
:mod:`hmctl._cmd_share`.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ._room_base import (
    RoomGroup,
    RoomOptions,
    json_option,
    kv_table,
    options,
    parse_duration,
    runtime,
)
from ._runtime import Runtime
from ._via_hub import ask_via_hub
from .client import (
    AccessRefused,
    NotFound,
    Profile,
    RoomApi,
    RoomSpec,
    RoomTarget,
    RunBudget,
    RunFailed,
    TrustRefused,
    UsageProblem,
    VerifiedRoom,
    artifact_names,
    create_room,
    fetch_artifacts,
    local_agent_view,
    manifest_summary,
    pack_agent,
    resolve_target,
    run_stage,
    sign_trust_update,
    submit_run,
    upload_and_run,
    verify_room,
    verify_run,
    wait_for_run,
)

__all__ = ["room"]

_VISIBILITY = click.Choice(["inspectable", "sealed"])
_TRUST_MODES = click.Choice(["operator_updates", "owner_approved", "pinned"])
_OUTPUT = click.Choice(["querier_only", "owner_and_querier"])
_MAX_RUN_TIMEOUT = 3600


@click.group("room", cls=RoomGroup)
def room() -> None:
    """Create, share, verify and ask attested rooms."""


# -- shared pieces-------------------------------------------------------------------


def _owner_profile(opts: RoomOptions) -> Profile:
    profile = opts.load_profile()
    if not profile.api_key.startswith("hmk_"):
        raise UsageProblem(
            f"profile {profile.name!r} has no tenant key (hmk_...)",
            hint="run: hmctl init --service URL --api-key hmk_...",
        )
    return profile


def _owner_target(opts: RoomOptions, ref: str) -> RoomTarget:
    """The owner's view of a room given by id or by one of its links."""
    profile = _owner_profile(opts)
    room_id = ref
    if ref.strip().startswith("hmroom://"):
        room_id = resolve_target(opts.state, profile, ref).room_id
    return resolve_target(opts.state, profile, room_id)


def _verify(ctx: click.Context, target: RoomTarget) -> VerifiedRoom:
    opts = options(ctx)
    with opts.open(target) as api:
        return verify_room(
            api,
            opts.state,
            opts.trust(runtime(ctx)),
            room_id=target.room_id,
            owner_pubkey_b64=target.owner_pubkey_b64,
            service=opts.verified(target.service),
        )


def _summary_panel(verified: VerifiedRoom) -> Panel:
    title = "Room manifest (verified)"
    if verified.service.attestation is not None and verified.service.label != "attested":
        title += " - UNATTESTED (dev)"
    return Panel(kv_table(manifest_summary(verified)), title=title, expand=False)


def _room_json(
    verified: VerifiedRoom, accepted: bool | None = None, access: str | None = None
) -> dict[str, Any]:
    att = verified.service.attestation
    data: dict[str, Any] = {
        "room_id": verified.room_id,
        "service": verified.service.service,
        "manifest": verified.manifest,
        "manifest_hash": verified.manifest_hash,
        "owner_pubkey_b64": verified.owner_pubkey_b64,
        "signature": "verified",
        "revoked": verified.revoked,
        "attestation": {
            "label": verified.service.label,
            "platform": att.platform if att else None,
            "compose_hash": att.compose_hash if att else None,
            "decision": verified.service.decision,
        },
        "agents": {
            role: (
                {
                    "agent_id": view.get("agent_id"),
                    "inspection_mode": view.get("inspection_mode"),
                    "files_digest_sha256": view.get("files_digest_sha256"),
                    "attested_files_digest_sha256": view.get("attested_files_digest_sha256"),
                }
                if view
                else None
            )
            for role, view in verified.agents.items()
        },
    }
    if accepted is not None:
        data["accepted"] = accepted
    if access is not None:
        data["access"] = access
    return data


def _read_text(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).read_text("utf-8")
    except OSError as exc:
        raise UsageProblem(f"cannot read {path}: {exc.strerror}") from None


# -- create / invite ------------------------------------------------------------------


@room.command("create")
@click.argument("scope")
@click.option("--name", default="", help="Room name shown to participants.")
@click.option("--rules", default="", help="Human-readable rules (signed into the manifest).")
@click.option("--rules-file", type=click.Path(dir_okay=False), help="Read the rules from a file.")
@click.option(
    "--policy-file",
    type=click.Path(dir_okay=False),
    help="Policy text given to the scope and mediator agents (default: the rules).",
)
@click.option(
    "--scope-visibility",
    type=_VISIBILITY,
    default=None,
    help="Scope agent visibility (uploads default to inspectable).",
)
@click.option("--scope-private", multiple=True, help="Path inside the scope agent kept private.")
@click.option("--query-agent", default=None, help="Fix the query agent: an agent id or a path.")
@click.option("--query-private", multiple=True, help="Path inside the query agent kept private.")
@click.option(
    "--mediator-private", multiple=True, help="Path inside the mediator agent kept private."
)
@click.option(
    "--uploadable-query",
    is_flag=True,
    help="Participants bring their own query agent (the default without --query-agent).",
)
@click.option(
    "--query-visibility",
    type=_VISIBILITY,
    default=None,
    help="Query agent visibility (uploads default to sealed).",
)
@click.option("--mediator-agent", default=None, help="Pin a mediator: an agent id or a path.")
@click.option("--mediator-visibility", type=_VISIBILITY, default=None, help="Mediator visibility.")
@click.option(
    "--output-visibility",
    type=_OUTPUT,
    default="querier_only",
    show_default=True,
    help="Who sees run outputs: the asker only, or the owner too.",
)
@click.option(
    "--llm-provider", multiple=True, help="Allowed LLM provider (repeatable; default openrouter)."
)
@click.option("--no-llm", is_flag=True, help="Allow no LLM egress at all.")
@click.option(
    "--allow-artifacts/--no-artifacts",
    default=True,
    show_default=True,
    help="Whether runs may release files.",
)
@click.option("--allowed-table", multiple=True, help="Table the agents may read (repeatable).")
@click.option(
    "--trust-mode",
    type=_TRUST_MODES,
    default="operator_updates",
    show_default=True,
    help="Which deployments the room accepts (strict modes list compose hashes).",
)
@click.option(
    "--allowed-compose",
    multiple=True,
    help="Compose hash allowed by a strict trust mode (repeatable).",
)
@click.option(
    "--agent-timeout",
    type=click.IntRange(1, 86400),
    default=None,
    help="Timeout in seconds recorded for uploaded agents.",
)
@click.option("-q", "--quiet", is_flag=True, help="Print only the room id.")
@json_option
@click.pass_context
def room_create(ctx: click.Context, scope: str, **o: Any) -> None:
    """Create a room owned by this profile; SCOPE is an agent id or a directory/.tar.gz.

    The manifest is built and signed on this machine with the profile's owner
    key (created on first use); the service stores the public key only.
    """
    rt, opts = runtime(ctx), options(ctx)
    if o["query_agent"] and o["uploadable_query"]:
        raise UsageProblem("--query-agent and --uploadable-query exclude each other")
    if o["no_llm"] and o["llm_provider"]:
        raise UsageProblem("--no-llm and --llm-provider exclude each other")
    profile = _owner_profile(opts)
    rules = _read_text(o["rules_file"]) if o["rules_file"] else o["rules"]
    spec = RoomSpec(
        scope=scope,
        name=o["name"],
        rules=rules or "",
        policy=_read_text(o["policy_file"]),
        scope_visibility=o["scope_visibility"],
        query_agent=o["query_agent"],
        query_visibility=o["query_visibility"],
        mediator_agent=o["mediator_agent"],
        mediator_visibility=o["mediator_visibility"],
        output_visibility=o["output_visibility"],
        llm_providers=() if o["no_llm"] else (o["llm_provider"] or ("openrouter",)),
        allow_artifacts=o["allow_artifacts"],
        trust_mode=o["trust_mode"],
        allowed_composes=o["allowed_compose"],
        allowed_tables=o["allowed_table"],
        agent_timeout=o["agent_timeout"],
        private_paths={
            "scope": o["scope_private"],
            "query": o["query_private"],
            "mediator": o["mediator_private"],
        },
    )
    owner_key = opts.state.owner_key(profile.name, create=True)
    assert owner_key is not None
    with opts.api() as api:
        live = None
        if spec.trust_mode == "owner_approved" and not spec.allowed_composes:
            verified = opts.verified(profile.service)
            live = verified.attestation.compose_hash if verified.attestation else None
        result = create_room(api, owner_key, spec, live_compose_hash=live)
    data = {
        "room_id": result["room_id"],
        "link": result["link"],
        "manifest_hash": result["room"]["manifest_hash"],
        "owner_pubkey_b64": owner_key.public_key_b64(),
    }
    if o["quiet"] and not rt.json_output:
        click.echo(result["room_id"])
        return

    def human(c: Console) -> None:
        c.print(
            kv_table(
                [
                    ("Room", data["room_id"]),
                    ("Manifest hash", data["manifest_hash"]),
                    ("Invite", data["link"]),
                ]
            )
        )
        c.print(
            "Share the invite link with one participant; mint more with: "
            f"hmctl room invite {data['room_id']}",
            markup=False,
        )

    rt.emit(data, human)


@room.command("invite")
@click.argument("room_ref", metavar="ROOM")
@click.option(
    "--expires-in",
    metavar="DURATION",
    default=None,
    help="Invite lifetime: seconds or 90m, 12h, 7d (60 s to 365 d; default: no expiry).",
)
@click.option("-q", "--quiet", is_flag=True, help="Print only the link.")
@json_option
@click.pass_context
def room_invite(ctx: click.Context, room_ref: str, expires_in: str | None, quiet: bool) -> None:
    """Mint a new invite link for one more participant (owner only)."""
    rt, opts = runtime(ctx), options(ctx)
    body = None if expires_in is None else {"expires_in_seconds": parse_duration(expires_in)}
    target = _owner_target(opts, room_ref)
    with opts.open(target) as api:
        result = api.request("POST", f"/v1/rooms/{target.room_id}/invites", json=body)
    expires_at = result.get("expires_at")
    data = {
        "room_id": result["room_id"],
        "token_id": result["token_id"],
        "link": result["link"],
        "expires_at": expires_at,
    }
    if quiet and not rt.json_output:
        click.echo(result["link"])
        return
    rows = [("Room", data["room_id"]), ("Invite", data["link"])]
    when = (
        "never"
        if expires_at is None
        else time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(expires_at))
    )
    rows.append(("Expires", when))
    rt.emit(data, lambda c: c.print(kv_table(rows)))


# -- inspect / accept -----------------------------------------------------------------


@room.command("inspect")
@click.argument("room_ref", metavar="ROOM")
@json_option
@click.pass_context
def room_inspect(ctx: click.Context, room_ref: str) -> None:
    """Verify a room (service attestation, signed manifest, room trust) and show it.

    ROOM is an hmroom:// invite or share link, or a room id of this profile's own rooms.
    """
    rt, opts = runtime(ctx), options(ctx)
    target = resolve_target(opts.state, opts.maybe_profile(), room_ref)
    verified = _verify(ctx, target)
    accepted = opts.state.is_accepted(verified.acceptance_key(opts.profile_name()))

    def human(c: Console) -> None:
        c.print(_summary_panel(verified))
        table = Table("STAGE", "AGENT", "MODE", "FILES DIGEST")
        for role, view in verified.agents.items():
            if view:
                table.add_row(
                    role,
                    str(view.get("agent_id")),
                    str(view.get("inspection_mode")),
                    str(view.get("files_digest_sha256")),
                )
        c.print(table)
        if verified.revoked:
            c.print("This room has been revoked.", style="red", markup=False)
        if not target.is_owner:
            c.print(f"Access: {target.access} link", markup=False)
            c.print(
                "Accepted: " + ("yes" if accepted else "no (hmctl room accept LINK)"), markup=False
            )

    rt.emit(_room_json(verified, accepted, target.access), human)


def _accept(ctx: click.Context, verified: VerifiedRoom, *, ask: bool) -> bool:
    """Record acceptance; with ``ask`` the user must say yes (or have passed -y)."""
    rt, opts = runtime(ctx), options(ctx)
    name = opts.profile_name()
    if ask and opts.yes and not rt.json_output:
        rt.err_console.print(_summary_panel(verified))
        rt.err_console.print("Accepted with -y.", markup=False)
    if ask and not opts.yes:
        if rt.json_output:
            raise TrustRefused(
                f"room {verified.room_id} (manifest {verified.manifest_hash}) is not accepted",
                hint="run hmctl room accept LINK first, or pass -y",
            )
        rt.err_console.print(_summary_panel(verified))
        try:
            agreed = click.confirm(
                "Accept this room and send your question?", default=False, err=True
            )
        except click.Abort:  # end of input: nobody said yes
            agreed = False
        if not agreed:
            raise TrustRefused(
                f"room {verified.room_id} was not accepted",
                hint="answer yes, run hmctl room accept LINK first, or pass -y",
            )
    opts.state.accept(verified.acceptance_key(name), verified.acceptance_record(name))
    return True


@room.command("accept")
@click.argument("room_ref", metavar="ROOM")
@json_option
@click.pass_context
def room_accept(ctx: click.Context, room_ref: str) -> None:
    """Verify a room and record that you accept its manifest (per profile).

    A trust update changes the manifest hash, so it must be accepted again.
    """
    rt, opts = runtime(ctx), options(ctx)
    target = resolve_target(opts.state, opts.maybe_profile(), room_ref)
    verified = _verify(ctx, target)
    if verified.revoked:
        raise TrustRefused(f"room {verified.room_id} has been revoked")
    _accept(ctx, verified, ask=False)

    def human(c: Console) -> None:
        c.print(_summary_panel(verified))
        c.print(
            f"Accepted manifest {verified.manifest_hash} for profile {opts.profile_name()!r}.",
            markup=False,
        )

    rt.emit(_room_json(verified, True, target.access), human)


# -- ask ------------------------------------------------------------------------------


def _usage_text(run: dict[str, Any], budget: RunBudget) -> str:
    live, final = run.get("progress"), run.get("usage")
    usage = live if isinstance(live, dict) else final if isinstance(final, dict) else {}
    calls = usage.get("llm_calls", usage.get("calls", 0))
    tokens = usage.get("total_tokens", 0)
    calls_cap = f"/{budget.max_llm_calls}" if budget.max_llm_calls else ""
    tokens_cap = f"/{budget.max_tokens}" if budget.max_tokens else ""
    return f"LLM calls {calls}{calls_cap}, tokens {tokens}{tokens_cap}"


class _Progress:
    """The live status line of a run (Rich Live on a terminal, nothing otherwise)."""

    def __init__(self, rt: Runtime, budget: RunBudget) -> None:
        self._budget = budget
        enabled = not rt.json_output and rt.console.is_terminal
        self._live = Live(Text(""), console=rt.console, transient=True) if enabled else None

    def __enter__(self) -> _Progress:
        if self._live is not None:
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()

    def update(self, run: dict[str, Any], elapsed: float) -> None:
        if self._live is None:
            return
        line = Text.assemble(
            ("run ", "dim"),
            (str(run.get("run_id", "")), "bold"),
            ("  stage ", "dim"),
            (run_stage(run), "cyan"),
            ("  elapsed ", "dim"),
            (f"{int(elapsed)}s", ""),
            ("  ", ""),
            (_usage_text(run, self._budget), "dim"),
        )
        self._live.update(line)


def _query_agent_view(api: RoomApi, agent_id: str) -> dict[str, Any]:
    """The service's view of a participant-chosen agent (unknown digest if hidden)."""
    try:
        return api.get(f"/v1/room-agents/{agent_id}/attest")
    except (NotFound, AccessRefused):
        return {"agent_id": agent_id}


@room.command("ask")
@click.argument("room_ref", metavar="ROOM")
@click.argument("question")
@click.option("--query-agent", default=None, help="Query agent id (rooms with uploadable agents).")
@click.option(
    "--agent",
    "agent_path",
    type=click.Path(exists=True),
    help="Upload this query agent (directory or .tar.gz) and run it.",
)
@click.option(
    "--timeout",
    type=click.IntRange(1, 86400),
    default=900,
    show_default=True,
    help="Run time budget in seconds (sent capped at 3600).",
)
@click.option(
    "--max-llm-calls",
    type=click.IntRange(1),
    default=60,
    show_default=True,
    help="LLM call budget per stage.",
)
@click.option(
    "--max-tokens",
    type=click.IntRange(1),
    default=1_000_000,
    show_default=True,
    help="Token budget of the run.",
)
@click.option(
    "--memory-mb",
    type=click.IntRange(16),
    default=256,
    show_default=True,
    help="Memory of an uploaded query agent.",
)
@click.option("--model", default=None, help="Model for every stage.")
@click.option("--provider", default=None, help="LLM provider (must be allowed by the room).")
@click.option(
    "--fetch", is_flag=True, help="Download the run's artifacts to ./hivemind-artifacts/."
)
@click.option("--via-hub", default=None, help="Ask through this hub (ws://...), sealed end to end.")
@click.option("--access-key", default=None, help="Satellite access key at the --via-hub hub.")
@click.option("--password", default=None, help="Satellite password at the --via-hub hub.")
@json_option
@click.pass_context
def room_ask(ctx: click.Context, room_ref: str, question: str, **o: Any) -> None:
    """Verify the room, ask QUESTION, and verify the signed answer before printing it.

    Nothing is sent until the service attestation (fresh nonce), the signed
    manifest (against the owner key in the link) and your acceptance check out.
    ROOM is an invite link, the room's share link or (owner) a room id; a
    share link cannot upload a query agent (--agent needs an invite).
    """
    rt, opts = runtime(ctx), options(ctx)
    if o["agent_path"] and o["query_agent"]:
        raise UsageProblem("--agent and --query-agent exclude each other")
    profile = opts.maybe_profile()
    target = resolve_target(opts.state, profile, room_ref)
    if target.is_share and o["agent_path"]:
        raise UsageProblem(
            "a share link cannot upload a query agent",
            hint="ask with the room's query agent, or ask the owner for an invite link",
        )
    if not target.is_owner and not target.payer_key:
        if profile is not None and profile.api_key.startswith("hmk_"):
            raise UsageProblem(
                f"the link names {target.service}, but profile {profile.name!r} belongs to "
                f"{profile.service}; its key is never sent to another service",
                hint="ask with a profile of that service: hmctl --profile NAME room ask LINK ...",
            )
        raise UsageProblem(
            "asking needs your own tenant key to pay for the run",
            hint="run: hmctl init --service URL --api-key hmk_... (or hmctl signup NAME)",
        )
    if o["via_hub"]:
        ask_via_hub(rt, opts, target, question, o)
        return
    verified = _verify(ctx, target)
    if verified.revoked:
        raise TrustRefused(f"room {verified.room_id} has been revoked")
    key = verified.acceptance_key(opts.profile_name())
    if not target.is_owner and not opts.skip_attestations and not opts.state.is_accepted(key):
        _accept(ctx, verified, ask=True)
    budget = RunBudget(
        timeout_seconds=min(o["timeout"], _MAX_RUN_TIMEOUT),
        max_llm_calls=o["max_llm_calls"],
        max_tokens=o["max_tokens"],
        memory_mb=o["memory_mb"],
        models={"all": o["model"]} if o["model"] else {},
        provider=o["provider"],
    )
    deadline = 3 * o["timeout"] + 120
    with opts.open(target) as api:
        query_view = None
        if o["agent_path"]:
            archive = pack_agent(Path(o["agent_path"]))
            started = upload_and_run(api, target.room_id, question, archive, budget, name="query")
            query_view = local_agent_view(str(started["agent_id"]), archive)
        else:
            started = submit_run(
                api, target.room_id, question, budget, query_agent_id=o["query_agent"]
            )
        run_id = str(started["run_id"])
        with _Progress(rt, budget) as progress:
            run = wait_for_run(api, run_id, deadline_seconds=deadline, on_progress=progress.update)
        if query_view is None and verified.manifest["query"]["mode"] != "fixed":
            query_view = _query_agent_view(api, str(run.get("agent_id") or ""))
        pinned = _pinned_models(o["model"], owner=target.access == "owner")
        failed = run.get("status") == "failed"
        if failed and not run.get("attestation"):
            raise RunFailed(
                f"run {run_id} failed (unsigned): {run.get('error') or 'no detail'}",
                run_id=run_id,
                hint=f"details: hmctl runs show {run_id}",
            )
        body = verify_run(
            run, room=verified, prompt=question, query_agent=query_view, pinned_models=pinned
        )
        if failed:
            raise RunFailed(
                f"run {run_id} failed: {run.get('error') or 'no detail'} (failure signed)",
                run_id=run_id,
                hint=f"details: hmctl runs show {run_id}",
            )
        fetched = (
            fetch_artifacts(api, run, Path("hivemind-artifacts"), signed=body) if o["fetch"] else []
        )
    _print_answer(rt, verified, run, body, fetched)


def _print_answer(
    rt: Runtime,
    verified: VerifiedRoom,
    run: dict[str, Any],
    body: dict[str, Any] | None,
    fetched: list[dict[str, Any]],
) -> None:
    label = verified.service.label
    if body is None:
        reason = "not verified (attestation checks skipped)"
    elif label == "attested":
        reason = "signed by the attested service; every field verified"
    else:
        reason = "signed by a development service: UNATTESTED (dev); every field verified"
    data = {
        "status": run.get("status"),
        "run_id": run.get("run_id"),
        "output": run.get("output"),
        "artifacts": artifact_names(run),
        "fetched": fetched,
        "attestation_ok": body is not None,
        "attestation_label": label,
        "attestation_reason": reason,
        "models": body.get("models") if body else None,
    }

    def human(c: Console) -> None:
        title = f"Answer - run {run.get('run_id')}"
        c.print(Panel(Text(str(run.get("output") or "")), title=title, expand=False))
        for item in fetched:
            c.print(f"artifact: {item['path']} ({item['size']} bytes)", markup=False)
        mark = (
            "[green]attestation verified[/green]"
            if body
            else "[yellow]attestation NOT verified[/yellow]"
        )
        c.print(Group(Text.from_markup(mark), Text(reason, style="dim")))

    rt.emit(data, human)


# -- owner data -----------------------------------------------------------------------


def _parse_meta(pairs: tuple[str, ...]) -> dict[str, str]:
    meta = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageProblem(f"--meta expects KEY=VALUE, got {pair!r}")
        meta[key] = value
    return meta


@room.command("add-data")
@click.argument("room_ref", metavar="ROOM")
@click.argument("text", required=False)
@click.option(
    "--file",
    "file_",
    type=click.Path(exists=True, dir_okay=False),
    help="Read the item's text from a file.",
)
@click.option("--meta", multiple=True, help="Metadata KEY=VALUE (repeatable; stored unencrypted).")
@json_option
@click.pass_context
def room_add_data(
    ctx: click.Context, room_ref: str, text: str | None, file_: str | None, meta: tuple[str, ...]
) -> None:
    """Seal one text item into the room vault (owner; the room is verified first)."""
    rt, opts = runtime(ctx), options(ctx)
    if (text is None) == (file_ is None):
        raise UsageProblem("give exactly one of TEXT or --file")
    content = text if text is not None else _read_text(file_)
    if not content:
        raise UsageProblem("the item is empty")
    metadata = _parse_meta(meta)
    target = _owner_target(opts, room_ref)
    _verify(ctx, target)
    with opts.open(target) as api:
        item = api.request(
            "POST", f"/v1/rooms/{target.room_id}/data", json={"text": content, "metadata": metadata}
        )
    rt.emit(
        item,
        lambda c: c.print(
            f"Sealed {item['item_id']} ({item['size_bytes']} bytes) into {item['room_id']}",
            markup=False,
        ),
    )


@room.command("data")
@click.argument("room_ref", metavar="ROOM")
@click.option("--show-text", is_flag=True, help="Print each item's text too.")
@json_option
@click.pass_context
def room_data(ctx: click.Context, room_ref: str, show_text: bool) -> None:
    """List the room's vault items (owner)."""
    rt, opts = runtime(ctx), options(ctx)
    target = _owner_target(opts, room_ref)
    with opts.open(target) as api:
        items = api.get(f"/v1/rooms/{target.room_id}/data")["items"]
    if not show_text:
        items = [{k: v for k, v in i.items() if k != "text"} for i in items]

    def human(c: Console) -> None:
        table = Table("ITEM", "SIZE", "METADATA", *(["TEXT"] if show_text else []))
        for i in items:
            meta = ", ".join(f"{k}={v}" for k, v in (i.get("metadata") or {}).items())
            cells = [str(i["item_id"]), str(i["size_bytes"]), meta]
            if show_text:
                cells.append(str(i.get("text", "")))
            table.add_row(*(Text(x) for x in cells))
        c.print(table)

    rt.emit({"items": items}, human)


@room.command("list")
@click.option(
    "--limit", type=click.IntRange(1, 100), default=50, show_default=True, help="Most rooms."
)
@json_option
@click.pass_context
def room_list(ctx: click.Context, limit: int) -> None:
    """List this profile's rooms, newest first."""
    rt, opts = runtime(ctx), options(ctx)
    with opts.api() as api:
        rooms = api.get("/v1/rooms", limit=limit)["rooms"]
    rows = [
        {
            "room_id": r["room_id"],
            "name": r["name"],
            "query_mode": r["query_mode"],
            "manifest_hash": r["manifest_hash"],
            "revoked": r["revoked_at"] is not None,
        }
        for r in rooms
    ]

    def human(c: Console) -> None:
        table = Table("ROOM", "NAME", "QUERY", "STATE", "MANIFEST")
        for r in rows:
            table.add_row(
                r["room_id"],
                Text(r["name"]),
                r["query_mode"],
                "revoked" if r["revoked"] else "active",
                r["manifest_hash"][:16],
            )
        c.print(table)

    rt.emit({"rooms": rows}, human)


@room.command("trust")
@click.argument("room_ref", metavar="ROOM")
@click.option("--mode", type=_TRUST_MODES, default=None, help="New trust mode.")
@click.option(
    "--compose", "composes", multiple=True, help="Allowed compose hash (replaces the list)."
)
@click.option("--approve-live", is_flag=True, help="Append the verified live compose hash.")
@json_option
@click.pass_context
def room_trust(
    ctx: click.Context,
    room_ref: str,
    mode: str | None,
    composes: tuple[str, ...],
    approve_live: bool,
) -> None:
    """Sign and install a trust update (a new manifest hash: participants accept again)."""
    rt, opts = runtime(ctx), options(ctx)
    if mode is None and not composes and not approve_live:
        raise UsageProblem("nothing to change", hint="pass --mode, --compose or --approve-live")
    profile = _owner_profile(opts)
    target = _owner_target(opts, room_ref)
    verified = _verify_for_trust(ctx, target)
    current = list(verified.manifest["trust"]["allowed_composes"])
    allowed = list(composes) if composes else current
    if approve_live:
        if verified.service.attestation is None:
            raise UsageProblem(
                "--approve-live needs a verified attestation",
                hint="drop --dangerously-skip-attestations",
            )
        live = verified.service.attestation.compose_hash
        allowed = [*allowed, live] if live not in allowed else allowed
    key = opts.state.owner_key(profile.name)
    assert key is not None
    envelope = sign_trust_update(verified.manifest, key, mode=mode, allowed_composes=allowed)
    with opts.open(target) as api:
        result = api.request(
            "POST", f"/v1/rooms/{target.room_id}/trust", json={"envelope": envelope}
        )
    data = {
        "room_id": result["room_id"],
        "manifest_hash": result["room"]["manifest_hash"],
        "trust": envelope["manifest"]["trust"],
    }
    rt.emit(
        data,
        lambda c: c.print(
            kv_table(
                [
                    ("Room", data["room_id"]),
                    ("Trust mode", data["trust"]["mode"]),
                    ("Allowed composes", ", ".join(data["trust"]["allowed_composes"]) or "-"),
                    ("New manifest hash", data["manifest_hash"]),
                ]
            )
        ),
    )


def _verify_for_trust(ctx: click.Context, target: RoomTarget) -> VerifiedRoom:
    """Verify the service and the signature, but not room trust: fixing it is the point."""
    opts = options(ctx)
    trust = opts.trust(runtime(ctx))
    service = opts.verified(target.service)
    with opts.open(target) as api:
        quiet = dataclasses.replace(trust, skip_attestations=True, notify=lambda text: None)
        signed = verify_room(
            api, opts.state, quiet, room_id=target.room_id, owner_pubkey_b64=target.owner_pubkey_b64
        )
    return dataclasses.replace(signed, service=service)


# -- prune / delete -------------------------------------------------------------------


def _revoke(api: RoomApi, room_id: str) -> dict[str, Any]:
    return api.request("DELETE", f"/v1/rooms/{room_id}")


@room.command("delete")
@click.argument("room_ref", metavar="ROOM")
@json_option
@click.pass_context
def room_delete(ctx: click.Context, room_ref: str) -> None:
    """Revoke a room, every invite to it and its share link (asks first unless -y)."""
    rt, opts = runtime(ctx), options(ctx)
    target = _owner_target(opts, room_ref)
    if not opts.yes:
        click.confirm(f"Revoke room {target.room_id} and all its invites?", abort=True, err=True)
    with opts.open(target) as api:
        result = _revoke(api, target.room_id)
    rt.emit(
        result,
        lambda c: c.print(
            f"Revoked {result['room_id']} ({result['invites_revoked']} invites"
            + (", share link disabled)" if result.get("share_link_disabled") else ")"),
            markup=False,
        ),
    )


@room.command("prune")
@click.option(
    "--limit",
    type=click.IntRange(1, 100),
    default=100,
    show_default=True,
    help="Rooms examined.",
)
@click.option("--keep", multiple=True, help="Room id or link to keep (repeatable).")
@click.option("--name-prefix", default=None, help="Only rooms whose name starts with this.")
@click.option("--all-active", is_flag=True, help="Select every active room (minus --keep).")
@click.option(
    "--dry-run/--no-dry-run",
    default=True,
    show_default=True,
    help="Only list what would be revoked.",
)
@json_option
@click.pass_context
def room_prune(
    ctx: click.Context,
    limit: int,
    keep: tuple[str, ...],
    name_prefix: str | None,
    all_active: bool,
    dry_run: bool,
) -> None:
    """Revoke many rooms at once (a dry run unless --no-dry-run)."""
    rt, opts = runtime(ctx), options(ctx)
    if not name_prefix and not all_active:
        raise UsageProblem("select rooms with --name-prefix or --all-active")
    profile = _owner_profile(opts)
    kept = {resolve_target(opts.state, profile, k).room_id for k in keep}
    with opts.api() as api:
        rooms = api.get("/v1/rooms", limit=limit)["rooms"]
        candidates = [
            r["room_id"]
            for r in rooms
            if r["revoked_at"] is None
            and r["room_id"] not in kept
            and (not name_prefix or r["name"].startswith(name_prefix))
        ]
        revoked: list[str] = []
        errors: list[dict[str, str]] = []
        if not dry_run and candidates:
            if not opts.yes:
                click.confirm(f"Revoke {len(candidates)} rooms?", abort=True, err=True)
            for room_id in candidates:
                try:
                    _revoke(api, room_id)
                    revoked.append(room_id)
                except Exception as exc:  # one failure must not stop the sweep
                    errors.append({"room_id": room_id, "error": str(exc)})
    data = {"dry_run": dry_run, "candidates": candidates, "revoked": revoked, "errors": errors}

    def human(c: Console) -> None:
        verb = "Would revoke" if dry_run else "Revoked"
        c.print(f"{verb}: {len(candidates) if dry_run else len(revoked)}", markup=False)
        for room_id in candidates:
            c.print(f"  {room_id}", markup=False)
        for e in errors:
            c.print(f"  failed {e['room_id']}: {e['error']}", markup=False)

    rt.emit(data, human)
    if errors:
        ctx.exit(1)


def _pinned_models(model: str | None, *, owner: bool) -> dict[str, str]:
    """The stage models a run must attest to after ``--model``.

    The owner's model applies to every stage; a participant's reaches the
    query stage only (the scope and mediator keep the operator's model).
    """
    if not model:
        return {}
    return dict.fromkeys(("scope", "query", "mediator") if owner else ("query",), model)
