"""``hmctl admin ...``: operator commands (tenants, credit codes, billing, prices).

Every command takes ``--service`` and ``--admin-key`` (environment
``HIVEMIND_ADMIN_KEY``); without them the active profile is used when its
role is ``admin``. The admin key goes to the service only after its
attestation verified (fresh nonce, approved compose hash).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ._cmd_account import usd
from ._room_base import RoomGroup, json_option, kv_table, options, parse_duration, runtime
from .client import RoomApi, UsageProblem

__all__ = ["admin"]

F = TypeVar("F", bound=Callable[..., Any])
_META = "hmctl.admin"


def _store(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    if value is not None:
        ctx.meta[f"{_META}.{param.name}"] = value


def admin_options(func: F) -> F:
    """``--service`` and ``--admin-key`` on an admin command."""
    func = click.option(
        "--service",
        default=None,
        expose_value=False,
        callback=_store,
        help="Service URL (default: the admin profile's).",
    )(func)
    func = click.option(
        "--admin-key",
        default=None,
        envvar="HIVEMIND_ADMIN_KEY",
        expose_value=False,
        callback=_store,
        show_envvar=True,
        help="The operator's admin key.",
    )(func)
    return json_option(func)


def admin_api(ctx: click.Context) -> RoomApi:
    """A client carrying the admin key, made once the service is verified."""
    service = ctx.meta.get(f"{_META}.service")
    key = ctx.meta.get(f"{_META}.admin_key")
    profile = options(ctx).maybe_profile()
    if profile is not None and profile.role == "admin":
        service = service or profile.service
        key = key or profile.api_key
    if not service or not key:
        raise UsageProblem(
            "no admin service or key",
            hint="pass --service URL and --admin-key KEY (or HIVEMIND_ADMIN_KEY)",
        )
    options(ctx).verified(service)
    return RoomApi(service, key)


@click.group("admin", cls=RoomGroup)
def admin() -> None:
    """Operator commands (need the service's admin key)."""


@admin.group("tenants")
def tenants() -> None:
    """Create, list, delete tenants and reset their keys."""


@tenants.command("create")
@click.argument("name")
@click.option("--allow-duplicate-name", is_flag=True, help="Allow a name already in use.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the new API key.")
@admin_options
@click.pass_context
def tenants_create(ctx: click.Context, name: str, allow_duplicate_name: bool, quiet: bool) -> None:
    """Create a tenant and print its API key (shown once)."""
    rt = runtime(ctx)
    with admin_api(ctx) as api:
        created = api.request(
            "POST",
            "/v1/admin/tenants",
            json={"name": name, "allow_duplicate_name": allow_duplicate_name},
        )
        service = api.service
    if quiet and not rt.json_output:
        click.echo(created["api_key"])
        return

    def human(c: Console) -> None:
        c.print(
            kv_table(
                [
                    ("Tenant", created["tenant_id"]),
                    ("Name", created["name"]),
                    ("API key", created["api_key"]),
                ]
            )
        )
        c.print(
            "Send the tenant these lines (the key is not shown again); the first verifies "
            "the service before the key goes to it:",
            markup=False,
        )
        c.print(f"hmctl trust attest --service {service}", markup=False, soft_wrap=True)
        c.print(
            f"hmctl --profile {name} init --service {service} --api-key {created['api_key']}",
            markup=False,
            soft_wrap=True,
        )

    rt.emit(created, human)


@tenants.command("list")
@admin_options
@click.pass_context
def tenants_list(ctx: click.Context) -> None:
    """List tenants."""
    rt = runtime(ctx)
    with admin_api(ctx) as api:
        found = api.get("/v1/admin/tenants")["tenants"]

    def human(c: Console) -> None:
        table = Table("TENANT", "NAME", "CREATED", "SUSPENDED")
        for t in found:
            table.add_row(
                t["id"],
                Text(str(t["name"])),
                str(t["created_at"]),
                "yes" if t.get("suspended") else "no",
            )
        c.print(table)

    rt.emit({"tenants": found}, human)


@tenants.command("delete")
@click.argument("tenant_id")
@admin_options
@click.pass_context
def tenants_delete(ctx: click.Context, tenant_id: str) -> None:
    """Delete a tenant and its database (asks first unless -y)."""
    rt = runtime(ctx)
    if not options(ctx).yes:
        click.confirm(f"Delete tenant {tenant_id} and all its data?", abort=True, err=True)
    with admin_api(ctx) as api:
        result = api.request("DELETE", f"/v1/admin/tenants/{tenant_id}")
    rt.emit(result, lambda c: c.print(f"Deleted {tenant_id}", markup=False))


@tenants.command("reset-key")
@click.argument("tenant_id")
@click.option("--clear-seal", is_flag=True, help="Drop the tenant seal (sealed agents are lost).")
@click.option("--revoke-capabilities", is_flag=True, help="Also revoke invites and share links.")
@admin_options
@click.pass_context
def tenants_reset_key(
    ctx: click.Context, tenant_id: str, clear_seal: bool, revoke_capabilities: bool
) -> None:
    """Issue a new API key for a tenant (the old one stops working)."""
    rt = runtime(ctx)
    if not options(ctx).yes:
        click.confirm(f"Reset the key of {tenant_id}?", abort=True, err=True)
    with admin_api(ctx) as api:
        result = api.request(
            "POST",
            f"/v1/admin/tenants/{tenant_id}/reset-key",
            json={"clear_seal": clear_seal, "revoke_capabilities": revoke_capabilities},
        )
    rt.emit(
        result,
        lambda c: c.print(
            kv_table([("Tenant", result["tenant_id"]), ("New API key", result["api_key"])])
        ),
    )


# -- credit codes -----------------------------------------------------------------------


@admin.group("credit-codes")
def credit_codes() -> None:
    """Create, list and revoke credit codes."""


@credit_codes.command("create")
@click.option("--credit", default="0", show_default=True, help="Credit in USD per redemption.")
@click.option(
    "--uses", type=click.IntRange(1), default=1, show_default=True, help="Redemptions allowed."
)
@click.option("--expires-in", default=None, help="Lifetime, e.g. 7d, 24h, 60m, 90s.")
@click.option("--label", default="", help="A note for the operator.")
@admin_options
@click.pass_context
def codes_create(
    ctx: click.Context, credit: str, uses: int, expires_in: str | None, label: str
) -> None:
    """Mint a credit code (the code is shown once)."""
    rt = runtime(ctx)
    body: dict[str, Any] = {"credit_usd": credit, "max_redemptions": uses, "label": label}
    if expires_in:
        body["expires_in_seconds"] = parse_duration(expires_in)
    with admin_api(ctx) as api:
        record = api.request("POST", "/v1/admin/credit-codes", json=body)

    def human(c: Console) -> None:
        c.print(
            kv_table(
                [
                    ("Code", record["code"]),
                    ("Id", record["code_id"]),
                    ("Credit", usd(record["credit_micro_usd"])),
                    ("Uses", str(record["max_redemptions"])),
                ]
            )
        )
        c.print(f"Redeem with: hmctl redeem-credit '{record['code']}'", markup=False)

    rt.emit(record, human)


@credit_codes.command("list")
@click.option("--include-revoked", is_flag=True, help="Also list revoked codes.")
@click.option(
    "--limit", type=click.IntRange(1, 1000), default=100, show_default=True, help="Most codes."
)
@admin_options
@click.pass_context
def codes_list(ctx: click.Context, include_revoked: bool, limit: int) -> None:
    """List credit codes (never their plaintext)."""
    rt = runtime(ctx)
    with admin_api(ctx) as api:
        found = api.get(
            "/v1/admin/credit-codes", include_revoked=str(include_revoked).lower(), limit=limit
        )["credit_codes"]

    def human(c: Console) -> None:
        table = Table("ID", "LABEL", "CREDIT", "USED", "EXPIRES", "ACTIVE")
        for r in found:
            expires = r.get("expires_at")
            when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(expires)) if expires else "never"
            table.add_row(
                r["code_id"],
                Text(str(r.get("label", ""))),
                usd(r["credit_micro_usd"]),
                f"{r['redeemed_count']}/{r['max_redemptions']}",
                when,
                "yes" if r.get("active") else "no",
            )
        c.print(table)

    rt.emit({"credit_codes": found}, human)


@credit_codes.command("revoke")
@click.argument("code_id")
@admin_options
@click.pass_context
def codes_revoke(ctx: click.Context, code_id: str) -> None:
    """Revoke a credit code."""
    rt = runtime(ctx)
    with admin_api(ctx) as api:
        result = api.request("POST", f"/v1/admin/credit-codes/{code_id}/revoke")
    rt.emit(result, lambda c: c.print(f"Revoked {code_id}", markup=False))


# -- billing and prices -------------------------------------------------------------------


@admin.group("billing")
def billing() -> None:
    """Accounts, the ledger and credit grants."""


@billing.command("accounts")
@admin_options
@click.pass_context
def billing_accounts(ctx: click.Context) -> None:
    """Every tenant's balance and totals."""
    rt = runtime(ctx)
    with admin_api(ctx) as api:
        result = api.get("/v1/admin/billing")

    def human(c: Console) -> None:
        table = Table("TENANT", "NAME", "BALANCE", "CREDITED", "SPENT")
        for a in result["accounts"]:
            table.add_row(
                a["tenant_id"],
                Text(str(a["name"])),
                usd(a["balance_micro_usd"]),
                usd(a.get("total_credit_micro_usd")),
                usd(a.get("total_spent_micro_usd")),
            )
        c.print(table)
        c.print(
            f"Credit enforcement: {'on' if result.get('enforce_credits') else 'off'}", markup=False
        )

    rt.emit(result, human)


@billing.command("ledger")
@click.option("--tenant-id", default=None, help="Only this tenant.")
@click.option(
    "--limit", type=click.IntRange(1, 1000), default=100, show_default=True, help="Most entries."
)
@admin_options
@click.pass_context
def billing_ledger(ctx: click.Context, tenant_id: str | None, limit: int) -> None:
    """Recent ledger entries (all tenants or one)."""
    rt = runtime(ctx)
    with admin_api(ctx) as api:
        result = api.get("/v1/admin/billing/ledger", tenant_id=tenant_id, limit=limit)

    def human(c: Console) -> None:
        table = Table("WHEN", "TENANT", "KIND", "AMOUNT", "RUN")
        for e in result["ledger"]:
            table.add_row(
                str(e.get("created_at")),
                str(e.get("tenant_id")),
                str(e.get("kind")),
                usd(e.get("amount_micro_usd")),
                str(e.get("run_id") or ""),
            )
        c.print(table)

    rt.emit(result, human)


@billing.command("credits")
@click.argument("tenant_id")
@click.argument("amount_usd")
@click.option("--note", default="", help="Why the credit was granted.")
@admin_options
@click.pass_context
def billing_credits(ctx: click.Context, tenant_id: str, amount_usd: str, note: str) -> None:
    """Grant AMOUNT_USD of credit to a tenant."""
    rt = runtime(ctx)
    with admin_api(ctx) as api:
        result = api.request(
            "POST",
            f"/v1/admin/billing/{tenant_id}/credits",
            json={"amount_usd": amount_usd, "note": note},
        )
    rt.emit(
        result,
        lambda c: c.print(f"Granted; balance {usd(result['balance_micro_usd'])}", markup=False),
    )


@admin.group("prices")
def prices() -> None:
    """Model prices used for holds and settlement."""


@prices.command("list")
@admin_options
@click.pass_context
def prices_list(ctx: click.Context) -> None:
    """List model prices."""
    rt = runtime(ctx)
    with admin_api(ctx) as api:
        result = api.get("/v1/admin/billing/prices")

    def human(c: Console) -> None:
        table = Table("PROVIDER", "MODEL", "PROMPT $/Mtok", "COMPLETION $/Mtok", "SOURCE")
        for p in result["prices"]:
            table.add_row(
                p["provider"],
                Text(p["model"]),
                usd(p["prompt_microusd_per_mtok"]),
                usd(p["completion_microusd_per_mtok"]),
                str(p.get("source")),
            )
        c.print(table)

    rt.emit(result, human)


@prices.command("set")
@click.argument("provider")
@click.argument("model")
@click.option("--prompt-usd-per-million", required=True, help="USD per million prompt tokens.")
@click.option(
    "--completion-usd-per-million", required=True, help="USD per million completion tokens."
)
@click.option("--source", default="admin", show_default=True, help="Where the price came from.")
@admin_options
@click.pass_context
def prices_set(
    ctx: click.Context,
    provider: str,
    model: str,
    prompt_usd_per_million: str,
    completion_usd_per_million: str,
    source: str,
) -> None:
    """Set the price of one provider's model."""
    rt = runtime(ctx)
    body = {
        "provider": provider,
        "model": model,
        "prompt_usd_per_million": prompt_usd_per_million,
        "completion_usd_per_million": completion_usd_per_million,
        "source": source,
    }
    with admin_api(ctx) as api:
        result = api.request("POST", "/v1/admin/billing/prices", json=body)
    rt.emit(result, lambda c: c.print(f"Price set for {provider}/{model}", markup=False))
