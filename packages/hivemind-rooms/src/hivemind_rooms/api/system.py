"""System and identity routes: health, whoami, attestation bundle."""

from __future__ import annotations

import json
from importlib import metadata

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..vault import KeyScope
from . import _room_core as core
from ._auth import require, require_admin
from ._errors import ApiError
from .agents import attestation_bundle

__all__ = ["VERSION", "routes"]

try:
    VERSION = metadata.version("hivemind-rooms")
except metadata.PackageNotFoundError:  # running from a source tree
    VERSION = "0.0.0"


async def healthz(request: Request) -> JSONResponse:
    """``GET /v1/healthz``: liveness, no authentication."""
    del request
    return JSONResponse({"status": "ok", "version": VERSION})


async def health(request: Request) -> JSONResponse:
    """``GET /v1/health``: authenticated health (an admin key gets 401).

    An invite's ``table_count`` counts only the tables its room allows. The
    retention and the disabled providers and routes are the run engine's
    configured values (sorted lists).
    """
    caller = require(request, "owner", "query")
    services = request.app.state.services
    store = services.storage.tenant(caller.tenant_id)
    tables = store.user_tables()
    if caller.role == "query":  # an invite learns nothing of tables outside its room
        room = core.load_room(services, caller, caller.room_id)
        allowed = {t.lower() for t in json.loads(room["envelope"])["manifest"]["allowed_tables"]}
        tables = [t for t in tables if t.lower() in allowed]
    config = request.app.state.runs.config
    return JSONResponse(
        {
            "status": "ok",
            "table_count": len(tables),
            "version": VERSION,
            "artifact_retention_seconds": config.artifact_retention_s,
            "disabled_llm_providers": sorted(config.disabled_providers),
            "disabled_llm_routes": sorted(config.disabled_routes),
        }
    )


async def whoami(request: Request) -> JSONResponse:
    """``GET /v1/whoami``: who the bearer is and whether its sealed material is open."""
    caller = require(request, "owner", "query")
    services = request.app.state.services
    if caller.role == "owner":
        has_seal = services.storage.tenant(caller.tenant_id).get_tenant_kek() is not None
        scope = KeyScope.tenant(caller.tenant_id)
        is_sealed = has_seal and not services.keyring.is_open(scope)
    else:
        scope = KeyScope.room(caller.tenant_id, caller.room_id)
        is_sealed = not services.keyring.is_open(scope)
    return JSONResponse(
        {
            "tenant_id": caller.tenant_id,
            "name": caller.tenant_name,
            "role": caller.role,
            "constraints": caller.constraints,
            "token_id": caller.token_id,
            "sealed": is_sealed,
        }
    )


async def attestation(request: Request) -> JSONResponse:
    """``GET /v1/attestation``: the platform attestation bundle (public)."""
    bundle = await attestation_bundle(request.app.state.services, request)
    return JSONResponse({**bundle, "hivemind_version": VERSION})


async def llm_probe(request: Request) -> JSONResponse:
    """``GET /v1/admin/llm-probe``: no LLM provider is wired into this build."""
    require_admin(request)
    raise ApiError(501, "no LLM provider is configured in this service build")


routes = [
    Route("/v1/healthz", healthz, methods=["GET"]),
    Route("/v1/health", health, methods=["GET"]),
    Route("/v1/whoami", whoami, methods=["GET"]),
    Route("/v1/attestation", attestation, methods=["GET"]),
    Route("/v1/admin/llm-probe", llm_probe, methods=["GET"]),
]
