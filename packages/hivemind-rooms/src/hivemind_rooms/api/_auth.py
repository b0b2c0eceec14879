"""Who is calling: bearer parsing, role checks and the admin key."""

from __future__ import annotations

from starlette.requests import Request

from ..credentials import admin_key_matches
from ..tenants import Caller
from ._errors import ApiError

__all__ = ["bearer", "require", "require_admin"]


def bearer(request: Request) -> str:
    """Return the ``Authorization: Bearer`` credential ("" when absent)."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return ""
    return value.strip()


def require(request: Request, *roles: str) -> Caller:
    """Authenticate the caller and check its role.

    Args:
        request: The request.
        *roles: Accepted roles (``owner``, ``query``).

    Returns:
        The caller.

    Raises:
        ApiError: 401 unknown/revoked bearer; 403 wrong role.
    """
    caller = request.app.state.services.tenants.authenticate(bearer(request))
    if caller is None:
        raise ApiError(401, "Unauthorized")
    if caller.role not in roles:
        raise ApiError(403, f"role {caller.role!r} not permitted (need one of: {list(roles)})")
    return caller


def require_admin(request: Request) -> None:
    """Check the operator's admin key.

    Raises:
        ApiError: 503 when no admin key is configured; 401 when it does not match.
    """
    configured = request.app.state.services.settings.admin_key
    if not configured:
        raise ApiError(503, "admin API is disabled: HIVEMIND_ADMIN_KEY is not set")
    if not admin_key_matches(bearer(request), configured):
        raise ApiError(401, "Unauthorized")
