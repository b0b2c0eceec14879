"""The room service as an ASGI application.

:func:`create_app` builds a pure Starlette app; it never imports a server.
Databases, the credential pepper and the (empty) keyring are opened in the
lifespan, so each app instance (and each process) starts sealed.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute

from .api import all_routes
from .api._errors import exception_handlers
from .api._services import Services
from .api.openapi import build_openapi
from .api.system import VERSION
from .attestation import AttestationService
from .hive import hive_endpoint
from .pipeline import default_engine, recover_interrupted
from .settings import Settings
from .vault import DEFAULT_KDF, KdfParams

__all__ = ["create_app"]


def _bootstrap(settings: Settings) -> AttestationService:
    """Start the configured attestation provider (never fails: it may be not ready)."""
    measured = {
        "attestation_provider": settings.attestation_provider,
        "enforce_credits": settings.enforce_credits,
        "self_serve_signup": settings.self_serve_signup,
    }
    return AttestationService.bootstrap(
        settings.data_dir,
        app_version=VERSION,
        config=measured,
        mode=settings.attestation_provider,
    )


def create_app(
    settings: Settings,
    *,
    kdf: KdfParams = DEFAULT_KDF,
    attestation: Any = None,
    run_engine: Callable[[Services], Any] | None = None,
) -> Starlette:
    """Build the room service application.

    Args:
        settings: Service configuration.
        kdf: Cost of the key-wrapping KDF (tests may pass ``vault.FAST_KDF``).
        attestation: An :class:`AttestationService` to use instead of starting the
            provider named by ``settings.attestation_provider``.
        run_engine: Builds the run engine from the services (default:
            :func:`hivemind_rooms.pipeline.default_engine`).

    Returns:
        The Starlette app; its resources open when the lifespan starts.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        service = attestation if attestation is not None else _bootstrap(settings)
        services = Services.open(settings, kdf=kdf, attestation=service)
        app.state.services = services
        try:
            # No run survives a restart: fail leftovers, then serve the run queue.
            recover_interrupted(services)
            engine = (run_engine or default_engine)(services)
            app.state.runs = engine
            async with trio.open_nursery() as nursery:
                await nursery.start(engine.serve)
                try:
                    yield
                finally:
                    nursery.cancel_scope.cancel()
        finally:
            services.close()

    routes = all_routes()
    document = build_openapi(routes, VERSION)

    async def openapi(request: Request) -> JSONResponse:
        """``GET /openapi.json``: this API's OpenAPI document."""
        del request
        return JSONResponse(document)

    routes.append(Route("/openapi.json", openapi, methods=["GET"]))
    document["paths"]["/openapi.json"] = build_openapi(routes[-1:], VERSION)["paths"][
        "/openapi.json"
    ]
    # The HiveMind node endpoint hubs link to (hub upstream links connect to "/").
    routes += [WebSocketRoute("/", hive_endpoint), WebSocketRoute("/v1/hive/", hive_endpoint)]
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers=exception_handlers())
