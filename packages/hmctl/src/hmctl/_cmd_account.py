"""Identity, profiles and billing: ``init``, ``profile``, ``signup``, ``redeem-credit``,
``balance``, ``whoami``, ``doctor``."""

from __future__ import annotations

from importlib import metadata
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ._room_base import (
    RoomCommand,
    RoomGroup,
    RoomOptions,
    json_option,
    kv_table,
    options,
    runtime,
)
from .client import (
    AccessRefused,
    LocalState,
    Profile,
    RoomApi,
    RoomClientError,
    ServiceError,
    UsageProblem,
    resolve_target,
    verify_room,
    verify_service,
)
from .client.state import check_profile_name

__all__ = ["register"]


def usd(micro: Any) -> str:
    """Micro-USD as a dollar amount with six decimals."""
    try:
        return f"${int(micro) / 1_000_000:.6f}"
    except (TypeError, ValueError):
        return "-"


def _detect_role(service: str, key: str) -> tuple[str, dict[str, Any]]:
    with RoomApi(service, key) as api:
        try:
            return "tenant", api.get("/v1/health")
        except AccessRefused:
            try:
                api.get("/v1/admin/tenants")
            except AccessRefused:
                raise AccessRefused(
                    401, "the API key is not valid for this service", hint="check the key"
                ) from None
            return "admin", {}


@click.command("init", cls=RoomCommand)
@click.option("--service", required=True, help="Room service base URL, e.g. http://127.0.0.1:8100.")
@click.option("--api-key", required=True, help="Tenant key (hmk_...) or the operator's admin key.")
@json_option
@click.pass_context
def init(ctx: click.Context, service: str, api_key: str) -> None:
    """Save a profile for a room service after checking the key against it.

    The service's attestation is verified first (fresh nonce, approved compose
    hash); the key is sent only to a verified service.
    """
    rt, opts = runtime(ctx), options(ctx)
    state = opts.state
    name = opts.profile_name()
    opts.verified(service)
    role, health = _detect_role(service, api_key)
    profile = Profile(name=name, service=service.rstrip("/"), api_key=api_key, role=role)
    state.save_profile(profile)
    if not state.has_active_pointer():
        state.set_active(name)
    data = {
        "profile": name,
        "service": profile.service,
        "role": role,
        "version": health.get("version"),
        "table_count": health.get("table_count"),
    }
    rt.emit(
        data,
        lambda c: c.print(
            f"Profile {name!r} saved ({role}) for {profile.service}"
            + (
                f" - service {health.get('version')}, {health.get('table_count')} tables"
                if health
                else ""
            ),
            markup=False,
            highlight=False,
        ),
    )


@click.group("profile", cls=RoomGroup)
def profile_group() -> None:
    """List, select, show and remove saved profiles."""


@profile_group.command("use")
@click.argument("name")
@click.pass_context
def profile_use(ctx: click.Context, name: str) -> None:
    """Make NAME the active profile."""
    state = options(ctx).state
    state.set_active(check_profile_name(name))
    runtime(ctx).notice(f"active profile: {name}")


@profile_group.command("list")
@json_option
@click.pass_context
def profile_list(ctx: click.Context) -> None:
    """List saved profiles (the active one is marked)."""
    rt, state = runtime(ctx), options(ctx).state
    active = state.active_name()
    rows = [
        {
            "name": p.name,
            "active": p.name == active,
            "role": p.role,
            "has_key": bool(p.api_key),
            "service": p.service,
        }
        for p in state.list_profiles()
    ]

    def human(c: Console) -> None:
        table = Table("", "NAME", "ROLE", "KEY", "SERVICE")
        for r in rows:
            table.add_row(
                "*" if r["active"] else "",
                r["name"],
                r["role"],
                "yes" if r["has_key"] else "no",
                r["service"],
            )
        c.print(table)

    rt.emit({"profiles": rows}, human)


def _masked(key: str) -> str:
    return f"{key[:8]}..." if len(key) > 12 else ("set" if key else "")


@profile_group.command("show")
@click.argument("name", required=False)
@click.option("--show-key", is_flag=True, help="Print the API key in full.")
@json_option
@click.pass_context
def profile_show(ctx: click.Context, name: str | None, show_key: bool) -> None:
    """Show a profile (the active one by default); the key is masked unless --show-key."""
    rt, opts = runtime(ctx), options(ctx)
    state = opts.state
    p = state.load_profile(name or opts.profile_name())
    owner = state.owner_key(p.name)
    data = {
        "name": p.name,
        "service": p.service,
        "role": p.role,
        "api_key": p.api_key if show_key else _masked(p.api_key),
        "owner_pubkey_b64": owner.public_key_b64() if owner else None,
    }
    rows = [(k, str(v) if v is not None else "-") for k, v in data.items()]
    rt.emit(data, lambda c: c.print(kv_table(rows)))


@profile_group.command("remove")
@click.argument("name")
@click.pass_context
def profile_remove(ctx: click.Context, name: str) -> None:
    """Delete a saved profile and its room owner key (the service key is not revoked)."""
    opts = options(ctx)
    state = opts.state
    state.load_profile(name)
    if state.owner_key(name) is not None and not opts.yes:
        click.confirm(
            f"Profile {name!r} holds a room owner key; without it its rooms cannot be "
            "updated. Remove it?",
            abort=True,
            err=True,
        )
    state.remove_profile(name)
    runtime(ctx).notice(f"removed profile {name}")


@click.command("signup", cls=RoomCommand)
@click.argument("name")
@click.option("--service", default=None, help="Service URL (default: the profile's).")
@json_option
@click.pass_context
def signup(ctx: click.Context, name: str, service: str | None) -> None:
    """Create a tenant on a service with open signup and save its key to the profile.

    The service's attestation is verified first (fresh nonce, approved compose
    hash), so the key is only ever made by, and kept for, a verified service.
    """
    rt, opts = runtime(ctx), options(ctx)
    state = opts.state
    existing = opts.maybe_profile()
    url = service or (existing.service if existing else None)
    if not url:
        raise UsageProblem("no service URL", hint="pass --service URL")
    with RoomApi(url) as api:
        verify_service(api, state, opts.trust(rt))
        created = api.request("POST", "/v1/signup", json={"name": name})
    profile_name = opts.profile_name()
    state.save_profile(Profile(profile_name, url.rstrip("/"), created["api_key"], "tenant"))
    if not state.has_active_pointer():
        state.set_active(profile_name)
    rows = [
        ("Tenant", created["tenant_id"]),
        ("API key", created["api_key"]),
        ("Balance", usd(created.get("balance_micro_usd"))),
        ("Profile", profile_name),
    ]

    def human(c: Console) -> None:
        c.print(kv_table(rows))
        c.print("The key is shown once and saved in the profile.", markup=False)

    rt.emit({**created, "profile": profile_name}, human)


@click.command("redeem-credit", cls=RoomCommand)
@click.argument("code")
@json_option
@click.pass_context
def redeem_credit(ctx: click.Context, code: str) -> None:
    """Redeem a credit code for the profile's tenant."""
    rt = runtime(ctx)
    with options(ctx).api() as api:
        result = api.request("POST", "/v1/billing/credit-codes/redeem", json={"credit_code": code})
    rt.emit(
        result,
        lambda c: c.print(
            f"Credited {usd(result['credit_micro_usd'])}; balance "
            f"{usd(result['balance_micro_usd'])}",
            markup=False,
        ),
    )


@click.command("balance", cls=RoomCommand)
@click.option(
    "--limit", type=click.IntRange(1, 1000), default=10, show_default=True, help="Ledger entries."
)
@json_option
@click.pass_context
def balance(ctx: click.Context, limit: int) -> None:
    """Show the tenant's balance and recent ledger entries."""
    rt = runtime(ctx)
    with options(ctx).api() as api:
        result = api.get("/v1/billing", limit=limit)

    def human(c: Console) -> None:
        c.print(f"Balance: {usd(result['balance_micro_usd'])}", markup=False)
        table = Table("WHEN", "KIND", "AMOUNT", "RUN")
        for e in result.get("ledger", []):
            table.add_row(
                str(e.get("created_at")),
                str(e.get("kind")),
                usd(e.get("amount_micro_usd")),
                str(e.get("run_id") or ""),
            )
        c.print(table)

    rt.emit(result, human)


@click.command("whoami", cls=RoomCommand)
@json_option
@click.pass_context
def whoami(ctx: click.Context) -> None:
    """Show who the profile's key is on its service."""
    rt, opts = runtime(ctx), options(ctx)
    profile = opts.load_profile()
    if profile.role == "admin":
        data = {"profile": profile.name, "service": profile.service, "role": "admin"}
        rt.emit(data, lambda c: c.print(kv_table(list(data.items()))))
        return
    with opts.api() as api:
        result = api.get("/v1/whoami")
    data = {"profile": profile.name, "service": profile.service, **result}
    rows = [
        (k, str(data.get(k))) for k in ("profile", "service", "tenant_id", "name", "role", "sealed")
    ]
    rt.emit(data, lambda c: c.print(kv_table(rows)))


def _check(checks: list[dict[str, str]], name: str, status: str, detail: str) -> None:
    checks.append({"name": name, "status": status, "detail": detail})


def _doctor_service(checks: list[dict[str, str]], profile: Profile, opts: RoomOptions) -> None:
    try:
        verified = opts.verified(profile.service)
    except RoomClientError as exc:
        _check(checks, "service attestation", "FAIL", f"{exc.message}; {exc.hint}")
        return
    _check(checks, "service attestation", "OK", f"{verified.label} ({verified.decision})")
    with RoomApi(profile.service, profile.api_key) as api:
        try:
            if profile.role == "admin":
                api.get("/v1/admin/tenants")
                _check(checks, "service", "OK", f"{profile.service} accepts the admin key")
                return
            health = api.get("/v1/health")
            _check(
                checks,
                "service",
                "OK",
                f"version {health.get('version')}, {health.get('table_count')} tables",
            )
        except RoomClientError as exc:
            _check(checks, "service", "FAIL", exc.message)
            return
        try:
            bill = api.get("/v1/billing", limit=1)
            amount = int(bill.get("balance_micro_usd", 0))
            status = "OK" if amount > 0 else "WARN"
            detail = usd(amount) + ("" if amount > 0 else " - paid room asks may be refused")
            _check(checks, "billing", status, detail)
        except ServiceError as exc:
            _check(checks, "billing", "WARN", exc.message)


def _doctor_room(
    ctx: click.Context, checks: list[dict[str, str]], profile: Profile | None, room: str
) -> None:
    rt, opts = runtime(ctx), options(ctx)
    state: LocalState = opts.state
    try:
        target = resolve_target(state, profile, room)
        with opts.open(target) as api:
            verified = verify_room(
                api,
                state,
                opts.trust(rt),
                room_id=target.room_id,
                owner_pubkey_b64=target.owner_pubkey_b64,
                service=opts.verified(target.service),
            )
    except RoomClientError as exc:
        _check(checks, "room", "FAIL", exc.message)
        return
    att = verified.service.attestation
    compose = att.compose_hash if att else "-"
    _check(checks, "attestation", "OK", f"{verified.service.label}, compose {compose}")
    status = "FAIL" if verified.revoked else "OK"
    _check(
        checks,
        "room",
        status,
        f"{verified.room_id} signature verified" + (", revoked" if verified.revoked else ""),
    )
    if target.is_owner:
        return
    accepted = state.is_accepted(verified.acceptance_key(opts.profile_name()))
    _check(
        checks,
        "room acceptance",
        "OK" if accepted else "WARN",
        "accepted" if accepted else "not accepted yet (hmctl room accept LINK)",
    )


@click.command("doctor", cls=RoomCommand)
@click.argument("room", required=False)
@json_option
@click.pass_context
def doctor(ctx: click.Context, room: str | None) -> None:
    """Check the CLI, the profile, the service, billing and (optionally) a ROOM."""
    rt, opts = runtime(ctx), options(ctx)
    checks: list[dict[str, str]] = []
    _check(checks, "cli", "OK", f"hmctl {metadata.version('hmctl')}")
    profile: Profile | None = None
    try:
        profile = opts.load_profile()
        _check(checks, "profile", "OK", f"{profile.name} ({profile.role}) -> {profile.service}")
    except RoomClientError as exc:
        _check(checks, "profile", "WARN" if room else "FAIL", exc.message)
    if profile is not None:
        _check(
            checks,
            "api key",
            "OK" if profile.api_key else "FAIL",
            "present" if profile.api_key else "missing",
        )
        _doctor_service(checks, profile, opts)
    if room:
        _doctor_room(ctx, checks, profile, room)

    def human(c: Console) -> None:
        styles = {"OK": "green", "WARN": "yellow", "FAIL": "red"}
        table = Table("", "CHECK", "DETAIL", box=None)
        for ch in checks:
            table.add_row(
                f"[{styles[ch['status']]}]{ch['status']}[/]",
                ch["name"],
                ch["detail"].replace("[", "\\["),
            )
        c.print(table)

    rt.emit({"checks": checks}, human)
    if any(ch["status"] == "FAIL" for ch in checks):
        ctx.exit(1)


def register(cli: click.Group) -> None:
    """Add these commands to the top-level group."""
    for command in (init, profile_group, signup, redeem_credit, balance, whoami, doctor):
        cli.add_command(command)
