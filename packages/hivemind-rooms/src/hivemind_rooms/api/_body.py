"""Strict JSON request bodies.

Bodies are read with a byte cap (``Content-Length`` is checked first, then the
stream is counted, so a lying header does not help), decoded as UTF-8 JSON
with duplicate keys refused, and checked against a small declarative schema:
unknown fields, missing required fields and wrong types are all 422 with a
FastAPI-style problem list. Booleans are never accepted as integers. Nothing
is changed before the whole body has been validated.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any, Final, final

from starlette.requests import Request

from ._errors import ApiError

__all__ = ["MISSING", "Field", "parse", "read_json"]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


@final
@dataclasses.dataclass(frozen=True)
class Field:
    """One accepted body field.

    Attributes:
        types: Accepted Python types after JSON decoding (``int`` excludes ``bool``).
        required: Whether the field must be present.
        default: Value used when absent (``MISSING`` leaves it out).
        nullable: Whether JSON ``null`` is accepted.
        max_len: Longest accepted string or list.
    """

    types: tuple[type, ...]
    required: bool = False
    default: Any = MISSING
    nullable: bool = False
    max_len: int = 1_000_000


def _problem(field: str, msg: str, kind: str) -> dict[str, Any]:
    return {"loc": ["body", field], "msg": msg, "type": kind}


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


async def read_json(request: Request, *, max_bytes: int, allow_empty: bool = False) -> Any:
    """Read and decode a JSON body under a size cap.

    Args:
        request: The request.
        max_bytes: Largest accepted body.
        allow_empty: Treat an empty body as ``{}``.

    Returns:
        The decoded JSON value.

    Raises:
        ApiError: 413 too large, 415 wrong content type, 400 malformed JSON.
    """
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
        raise ApiError(413, f"request body exceeds {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise ApiError(413, f"request body exceeds {max_bytes} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        if allow_empty:
            return {}
        raise ApiError(400, "request body must be a JSON object")
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if ctype not in ("application/json", ""):
        raise ApiError(415, "request body must be application/json")
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, f"malformed JSON body: {exc}") from None


def _type_ok(value: Any, spec: Field) -> bool:
    if value is None:
        return spec.nullable
    if isinstance(value, bool):
        return bool in spec.types
    if isinstance(value, int) and float in spec.types:
        return True
    return isinstance(value, spec.types)


def parse(body: Any, schema: Mapping[str, Field]) -> dict[str, Any]:
    """Validate a decoded body against ``schema``.

    Returns:
        Only the schema's fields, defaults filled in.

    Raises:
        ApiError: 422 with every problem found.
    """
    if not isinstance(body, dict):
        raise ApiError(422, [_problem("", "body must be a JSON object", "type_error.dict")])
    problems = [
        _problem(key, "unknown field", "value_error.extra") for key in body if key not in schema
    ]
    out: dict[str, Any] = {}
    for name, spec in schema.items():
        if name not in body:
            if spec.required:
                problems.append(_problem(name, "field required", "value_error.missing"))
            elif spec.default is not MISSING:
                out[name] = spec.default
            continue
        value = body[name]
        if not _type_ok(value, spec):
            wanted = " or ".join(t.__name__ for t in spec.types)
            problems.append(_problem(name, f"must be {wanted}", "type_error"))
        elif isinstance(value, str | list | dict) and len(value) > spec.max_len:
            problems.append(_problem(name, f"longer than {spec.max_len}", "value_error.length"))
        else:
            out[name] = value
    if problems:
        raise ApiError(422, problems)
    return out


async def json_body(
    request: Request, schema: Mapping[str, Field], *, allow_empty: bool = False
) -> dict[str, Any]:
    """Read, decode and validate a JSON body in one step."""
    services = request.app.state.services
    raw = await read_json(
        request, max_bytes=services.settings.max_body_bytes, allow_empty=allow_empty
    )
    return parse(raw, schema)
