"""Operator routes (admin key): tenants, billing accounts, prices, credit codes, runs.

Admin views are metadata only: no route here returns prompts, outputs or
other tenant data.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..billing import usd_to_micro
from ._auth import require_admin
from ._body import Field, json_body
from ._errors import NO_STORE, ApiError
from ._query import bool_param, int_param
from .runs import run_metadata

__all__ = ["routes"]

_NAME = {
    "name": Field((str,), required=True, max_len=200),
    "allow_duplicate_name": Field((bool,), default=False),
}


def _services(request: Request) -> Any:
    require_admin(request)
    return request.app.state.services


async def create_tenant(request: Request) -> JSONResponse:
    """``POST /v1/admin/tenants``."""
    services = _services(request)
    body = await json_body(request, _NAME)
    created = services.tenants.provision(
        body["name"], allow_duplicate_name=body["allow_duplicate_name"]
    )
    return JSONResponse(created, headers=NO_STORE)


async def list_tenants(request: Request) -> JSONResponse:
    """``GET /v1/admin/tenants``."""
    return JSONResponse({"tenants": _services(request).tenants.list()})


async def delete_tenant(request: Request) -> JSONResponse:
    """``DELETE /v1/admin/tenants/{tenant_id}``."""
    services = _services(request)
    tenant_id = request.path_params["tenant_id"]
    services.forget_tenant(tenant_id)
    services.tenants.delete(tenant_id)
    return JSONResponse({"status": "ok", "tenant_id": tenant_id})


async def reset_key(request: Request) -> JSONResponse:
    """``POST /v1/admin/tenants/{tenant_id}/reset-key``."""
    services = _services(request)
    tenant_id = request.path_params["tenant_id"]
    body = await json_body(
        request,
        {
            "clear_seal": Field((bool,), default=False),
            "revoke_capabilities": Field((bool,), default=False),
        },
        allow_empty=True,
    )
    tenant = services.tenants.get(tenant_id)
    api_key = services.tenants.replace_key(tenant_id)
    # A reset key must not inherit warm keys: drop every cached key of the tenant.
    services.forget_tenant(tenant_id)
    seal_rows = services.clear_tenant_seal(tenant_id) if body["clear_seal"] else 0
    revoked = services.tenants.revoke_all_tokens(tenant_id) if body["revoke_capabilities"] else 0
    result = {
        "tenant_id": tenant_id,
        "name": tenant["name"],
        "db_name": tenant["db_name"],
        "api_key": api_key,
        "clear_seal": body["clear_seal"],
        "seal_rows_deleted": seal_rows,
        "revoke_capabilities": body["revoke_capabilities"],
        "capabilities_revoked": revoked,
    }
    return JSONResponse(result, headers=NO_STORE)


async def rename_tenant(request: Request) -> JSONResponse:
    """``POST /v1/admin/tenants/{tenant_id}/rename``."""
    services = _services(request)
    body = await json_body(request, _NAME)
    row = services.tenants.rename(
        request.path_params["tenant_id"],
        body["name"],
        allow_duplicate_name=body["allow_duplicate_name"],
    )
    row["suspended"] = bool(row["suspended"])
    return JSONResponse(row)


async def register_tenant(request: Request) -> JSONResponse:
    """``POST /v1/admin/tenants/register``: a tenant with a chosen id, adopting its database."""
    services = _services(request)
    body = await json_body(
        request,
        {
            **_NAME,
            "db_name": Field((str,), required=True, max_len=100),
            "api_key": Field((str,), nullable=True, max_len=100),
            "tenant_id": Field((str,), nullable=True, max_len=100),
        },
    )
    tenant_id = body.get("tenant_id") or (
        body["db_name"].removeprefix("tenant_") if body["db_name"].startswith("tenant_t_") else None
    )
    if tenant_id is None or body["db_name"] != f"tenant_{tenant_id}":
        raise ApiError(400, "db_name must be 'tenant_<tenant_id>' for the embedded store")
    created = services.tenants.register(
        body["name"],
        tenant_id=tenant_id,
        api_key=body.get("api_key"),
        allow_duplicate_name=body["allow_duplicate_name"],
    )
    return JSONResponse(created, headers=NO_STORE)


async def not_applicable(request: Request) -> JSONResponse:
    """Postgres-only operator routes: nothing to do for the embedded SQLite store."""
    _services(request)
    raise ApiError(501, "not applicable to the embedded SQLite store")


async def sweep_broken(request: Request) -> JSONResponse:
    """``POST /v1/admin/agents/sweep-broken``: agents without a Dockerfile (dry run by default)."""
    services = _services(request)
    dry_run = bool_param(request, "dry_run", True)
    orphans: list[dict[str, Any]] = []
    for tenant in services.tenants.list():
        store = services.storage.tenant(tenant["id"])
        for agent in store.list_agents():
            paths = {f["file_path"] for f in store.agent_files(agent["agent_id"])}
            if "Dockerfile" in paths:
                continue
            if not dry_run:
                store.delete_agent(agent["agent_id"])
            orphans.append(
                {
                    "tenant_id": tenant["id"],
                    "tenant_name": tenant["name"],
                    "agent_id": agent["agent_id"],
                    "name": agent["name"],
                    "agent_type": agent["agent_type"],
                    "image": agent["image"],
                    "deleted": not dry_run,
                }
            )
    deleted = 0 if dry_run else len(orphans)
    return JSONResponse(
        {"dry_run": dry_run, "count": len(orphans), "deleted": deleted, "orphans": orphans}
    )


async def admin_run(request: Request) -> JSONResponse:
    """``GET /v1/admin/runs/{run_id}``: one run's metadata (searching every tenant)."""
    services = _services(request)
    run_id = str(request.path_params["run_id"])
    for tenant in services.tenants.list():
        row = services.storage.tenant(tenant["id"]).get_run(run_id)
        if row is not None:
            body = {**run_metadata(row), "tenant_id": tenant["id"], "tenant_name": tenant["name"]}
            return JSONResponse(body, headers=NO_STORE)
    raise ApiError(404, "run not found")


async def accounts(request: Request) -> JSONResponse:
    """``GET /v1/admin/billing``."""
    services = _services(request)
    return JSONResponse(
        {
            "accounts": services.billing.accounts(),
            "enforce_credits": services.billing.enforce_credits,
        }
    )


async def ledger(request: Request) -> JSONResponse:
    """``GET /v1/admin/billing/ledger``."""
    services = _services(request)
    limit = int_param(request, "limit", 100, 1, 1000)
    tenant_id = request.query_params.get("tenant_id") or None
    return JSONResponse({"ledger": services.storage.control.ledger(tenant_id, limit)})


async def tenant_billing(request: Request) -> JSONResponse:
    """``GET /v1/admin/billing/{tenant_id}``."""
    services = _services(request)
    tenant_id = request.path_params["tenant_id"]
    services.tenants.get(tenant_id)
    limit = int_param(request, "limit", 25, 1, 1000)
    return JSONResponse(services.billing.statement(tenant_id, limit))


async def grant(request: Request) -> JSONResponse:
    """``POST /v1/admin/billing/{tenant_id}/credits``."""
    services = _services(request)
    tenant_id = request.path_params["tenant_id"]
    body = await json_body(
        request,
        {
            "amount_usd": Field((str, int), required=True, max_len=40),
            "note": Field((str,), default="", max_len=500),
        },
    )
    amount = usd_to_micro(body["amount_usd"])
    services.tenants.get(tenant_id)
    return JSONResponse(services.billing.grant(tenant_id, amount, body["note"]))


async def list_prices(request: Request) -> JSONResponse:
    """``GET /v1/admin/billing/prices``."""
    return JSONResponse({"prices": _services(request).billing.list_prices()})


async def set_price(request: Request) -> JSONResponse:
    """``POST /v1/admin/billing/prices``: upsert one price (USD per million tokens)."""
    services = _services(request)
    body = await json_body(
        request,
        {
            "provider": Field((str,), required=True, max_len=100),
            "model": Field((str,), required=True, max_len=300),
            "prompt_usd_per_million": Field((str, int), required=True, max_len=40),
            "completion_usd_per_million": Field((str, int), required=True, max_len=40),
            "source": Field((str,), default="admin", max_len=100),
        },
    )
    row = services.billing.set_price(
        body["provider"],
        body["model"],
        body["prompt_usd_per_million"],
        body["completion_usd_per_million"],
        body["source"],
    )
    return JSONResponse(row)


async def delete_price(request: Request) -> JSONResponse:
    """``DELETE /v1/admin/billing/prices/{provider}/{model:path}``."""
    services = _services(request)
    provider, model = request.path_params["provider"], request.path_params["model"]
    services.billing.delete_price(provider, model)
    return JSONResponse({"status": "ok", "provider": provider.lower(), "model": model})


async def list_codes(request: Request) -> JSONResponse:
    """``GET /v1/admin/credit-codes``."""
    services = _services(request)
    codes = services.billing.list_credit_codes(
        include_revoked=bool_param(request, "include_revoked", False),
        limit=int_param(request, "limit", 100, 1, 1000),
    )
    return JSONResponse({"credit_codes": codes})


async def create_code(request: Request) -> JSONResponse:
    """``POST /v1/admin/credit-codes``: mint a code (plaintext shown once)."""
    services = _services(request)
    body = await json_body(
        request,
        {
            "credit_usd": Field((str, int), required=True, max_len=40),
            "max_redemptions": Field((int,)),
            "uses": Field((int,)),
            "expires_at": Field((int, float), nullable=True),
            "expires_in_seconds": Field((int,), nullable=True),
            "label": Field((str,), default="", max_len=200),
        },
    )
    if "max_redemptions" in body and "uses" in body:
        raise ApiError(400, "give max_redemptions or uses, not both")
    if body.get("expires_at") is not None and body.get("expires_in_seconds") is not None:
        raise ApiError(400, "give expires_at or expires_in_seconds, not both")
    expires_at = body.get("expires_at")
    if body.get("expires_in_seconds") is not None:
        if body["expires_in_seconds"] <= 0:
            raise ApiError(400, "expires_in_seconds must be positive")
        expires_at = time.time() + body["expires_in_seconds"]
    record = services.billing.create_credit_code(
        credit_micro_usd=usd_to_micro(body["credit_usd"], field="credit_usd"),
        max_redemptions=body.get("max_redemptions", body.get("uses", 1)),
        expires_at=None if expires_at is None else float(expires_at),
        label=body["label"],
    )
    return JSONResponse(record, headers=NO_STORE)


async def revoke_code(request: Request) -> JSONResponse:
    """``POST /v1/admin/credit-codes/{code_id}/revoke``."""
    services = _services(request)
    code_id = request.path_params["code_id"]
    services.billing.revoke_credit_code(code_id)
    return JSONResponse({"status": "ok", "code_id": code_id})


async def admin_runs(request: Request) -> JSONResponse:
    """``GET /v1/admin/runs``: run metadata of every tenant (no prompts or outputs)."""
    services = _services(request)
    limit = int_param(request, "limit", 200, 1, 1000)
    per_tenant = int_param(request, "per_tenant", 100, 1, 1000)
    only = request.query_params.get("tenant_id")
    status = request.query_params.get("status")
    runs: list[dict[str, Any]] = []
    for tenant in services.tenants.list():
        if only and tenant["id"] != only:
            continue
        for row in services.storage.tenant(tenant["id"]).list_runs(per_tenant):
            if status and row["status"] != status:
                continue
            runs.append(
                {**run_metadata(row), "tenant_id": tenant["id"], "tenant_name": tenant["name"]}
            )
    runs.sort(key=lambda r: r["created_at"], reverse=True)
    return JSONResponse({"runs": runs[:limit]}, headers=NO_STORE)


routes = [
    Route("/v1/admin/tenants", create_tenant, methods=["POST"]),
    Route("/v1/admin/tenants", list_tenants, methods=["GET"]),
    Route("/v1/admin/tenants/register", register_tenant, methods=["POST"]),
    Route("/v1/admin/tenants/{tenant_id}", delete_tenant, methods=["DELETE"]),
    Route("/v1/admin/tenants/{tenant_id}/reset-key", reset_key, methods=["POST"]),
    Route("/v1/admin/tenants/{tenant_id}/rename", rename_tenant, methods=["POST"]),
    Route("/v1/admin/billing", accounts, methods=["GET"]),
    Route("/v1/admin/billing/ledger", ledger, methods=["GET"]),
    Route("/v1/admin/billing/prices", list_prices, methods=["GET"]),
    Route("/v1/admin/billing/prices", set_price, methods=["POST"]),
    Route("/v1/admin/billing/prices/{provider}/{model:path}", delete_price, methods=["DELETE"]),
    Route("/v1/admin/billing/{tenant_id}", tenant_billing, methods=["GET"]),
    Route("/v1/admin/billing/{tenant_id}/credits", grant, methods=["POST"]),
    Route("/v1/admin/credit-codes", list_codes, methods=["GET"]),
    Route("/v1/admin/credit-codes", create_code, methods=["POST"]),
    Route("/v1/admin/credit-codes/{code_id}/revoke", revoke_code, methods=["POST"]),
    Route("/v1/admin/runs", admin_runs, methods=["GET"]),
    Route("/v1/admin/runs/{run_id}", admin_run, methods=["GET"]),
    Route("/v1/admin/agents/sweep-broken", sweep_broken, methods=["POST"]),
    Route("/v1/admin/rename-database", not_applicable, methods=["POST"]),
    Route("/v1/admin/migrate-to-roles", not_applicable, methods=["POST"]),
]
