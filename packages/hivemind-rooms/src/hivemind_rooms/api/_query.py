"""Query-string and path parameter checks."""

from __future__ import annotations

from starlette.requests import Request

from ._errors import ApiError

__all__ = ["bool_param", "int_param"]


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    """Read an integer query parameter within bounds.

    Raises:
        ApiError: 422 when not an integer or out of range.
    """
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.lstrip("-").isdigit():
        raise ApiError(422, f"query parameter {name!r} must be an integer")
    value = int(raw)
    if not low <= value <= high:
        raise ApiError(422, f"query parameter {name!r} must be between {low} and {high}")
    return value


def bool_param(request: Request, name: str, default: bool) -> bool:
    """Read a boolean query parameter (1/true/yes, 0/false/no).

    Raises:
        ApiError: 422 for any other value.
    """
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    raise ApiError(422, f"query parameter {name!r} must be true or false")
