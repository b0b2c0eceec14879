"""HTTP errors and their JSON bodies.

Every refusal is ``{"detail": ...}``; a sealed tenant or room adds an
``error`` code. Domain errors from the library modules carry their own status
and are mapped here, so route handlers never build error responses by hand.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..agents_registry import AgentError
from ..billing import BillingError
from ..tenants import TenantError

__all__ = ["ApiError", "exception_handlers", "sealed"]

_log = logging.getLogger("hivemind_rooms.api")
NO_STORE = {"Cache-Control": "no-cache, no-store"}


class ApiError(Exception):
    """A client-visible refusal.

    Args:
        status: HTTP status code.
        detail: Message (or FastAPI-style list of validation problems).
        error: Optional machine-readable code.
    """

    def __init__(self, status: int, detail: Any, *, error: str = "") -> None:
        super().__init__(str(detail))
        self.status = status
        self.detail = detail
        self.error = error


def sealed(what: str, reason: str) -> ApiError:
    """A 503 for data that cannot be read until a credential is presented."""
    return ApiError(503, f"{what} is sealed: {reason}", error=f"{what.lower()}_sealed")


def _body(detail: Any, error: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {"detail": detail}
    if error:
        body["error"] = error
    return body


async def _api_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse(_body(exc.detail, exc.error), exc.status, headers=NO_STORE)


async def _domain_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, AgentError | BillingError | TenantError)
    return JSONResponse(_body(exc.message), exc.status, headers=NO_STORE)


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse(_body(exc.detail), exc.status_code, headers=exc.headers)


async def _unexpected(_: Request, exc: Exception) -> Response:
    _log.error("unhandled %s in a request handler", type(exc).__name__)
    return JSONResponse(_body("internal server error"), 500)


def exception_handlers() -> dict[Any, Any]:
    """The Starlette exception handler table of the app."""
    return {
        ApiError: _api_error,
        AgentError: _domain_error,
        BillingError: _domain_error,
        TenantError: _domain_error,
        HTTPException: _http_error,
        Exception: _unexpected,
    }
