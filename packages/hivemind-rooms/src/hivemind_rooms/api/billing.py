"""Billing routes for tenants: signup, statement, credit-code redemption."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ._auth import require
from ._body import Field, json_body, parse, read_json
from ._errors import NO_STORE, ApiError
from ._query import int_param

__all__ = ["routes"]

_CODE_WORDS = ("credit_code", "invite_code", "signup_code", "code")


async def signup(request: Request) -> JSONResponse:
    """``POST /v1/signup``: open tenant creation when enabled."""
    services = request.app.state.services
    if not services.settings.self_serve_signup:
        raise ApiError(503, "self-serve signup is disabled on this service")
    if not services.signups.take():
        raise ApiError(429, "too many signups right now; retry in a minute")
    raw = await read_json(request, max_bytes=services.settings.max_body_bytes)
    if isinstance(raw, dict) and any(word in raw for word in _CODE_WORDS):
        raise ApiError(
            400,
            "credit codes are redeemed after signup with POST /v1/billing/credit-codes/redeem",
        )
    body = parse(raw, {"name": Field((str,), required=True, max_len=200)})
    created = services.tenants.signup(body["name"], services.settings.signup_starter_credit_code)
    return JSONResponse(created, headers=NO_STORE)


async def statement(request: Request) -> JSONResponse:
    """``GET /v1/billing``: the owner's balance and recent ledger."""
    caller = require(request, "owner")
    limit = int_param(request, "limit", 25, 1, 1000)
    return JSONResponse(request.app.state.services.billing.statement(caller.tenant_id, limit))


async def redeem(request: Request) -> JSONResponse:
    """``POST /v1/billing/credit-codes/redeem``: add credit from a code."""
    caller = require(request, "owner")
    body = await json_body(
        request, {"credit_code": Field((str,), max_len=200), "code": Field((str,), max_len=200)}
    )
    code = body.get("credit_code", body.get("code", ""))
    result = request.app.state.services.billing.redeem(caller.tenant_id, code)
    return JSONResponse(result)


routes = [
    Route("/v1/signup", signup, methods=["POST"]),
    Route("/v1/billing", statement, methods=["GET"]),
    Route("/v1/billing/credit-codes/redeem", redeem, methods=["POST"]),
]
