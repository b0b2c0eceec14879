"""The OpenAPI 3.1 document of the service, derived from the route table.

Each operation takes its summary from the handler's docstring; the security
requirement says which credentials the route accepts. The document is built
once per app and served at ``GET /openapi.json``.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable
from typing import Any

from starlette.routing import BaseRoute, Route

__all__ = ["build_openapi"]

_PUBLIC = {"/v1/healthz", "/v1/attestation", "/v1/signup", "/openapi.json"}
_PARAM = re.compile(r"{([a-z_]+)(?::path)?}")
_RUN = "/v1/runs/{run_id}"
_ARTIFACT = "/v1/runs/{run_id}/artifacts/{filename}"
# Sealed at rest: these operations need a key opened by the caller's own
# credential (503 with the error code until then), and these refuse stored
# data that fails authentication (409).
_ROOM_KEY_OPERATIONS = (
    ("/v1/rooms/{room_id}/open", "post"),
    ("/v1/rooms/{room_id}/data", "get"),
    ("/v1/rooms/{room_id}/data", "post"),
    ("/v1/rooms/{room_id}/runs", "post"),
    ("/v1/rooms/{room_id}/query-agents", "post"),
    ("/v1/rooms/{room_id}/invites", "post"),
    ("/v1/rooms/{room_id}/share-link", "post"),
    ("/v1/rooms/{room_id}/share-link/rotate", "post"),
    (_RUN, "get"),
    (_ARTIFACT, "get"),
)
_SEALED: dict[tuple[str, str], str] = {
    **dict.fromkeys(_ROOM_KEY_OPERATIONS, "room_sealed"),
    ("/v1/room-agents", "post"): "tenant_sealed",
}
_UNREADABLE: dict[tuple[str, str], str] = {
    (_RUN, "get"): "run_unreadable",
    (_ARTIFACT, "get"): "artifact_unreadable",
    ("/v1/rooms/{room_id}/data", "get"): "vault_item_unreadable",
    ("/v1/rooms/{room_id}/runs", "post"): "vault_item_unreadable",
    ("/v1/rooms/{room_id}/query-agents", "post"): "vault_item_unreadable",
}
# Operations whose 409 may also be a plain conflict without an error code
# (an idempotency key reused by another caller, a room whose stored envelope
# fails verification).
_UNREADABLE_OR_CONFLICT = frozenset(
    {
        ("/v1/rooms/{room_id}/data", "get"),
        ("/v1/rooms/{room_id}/runs", "post"),
        ("/v1/rooms/{room_id}/query-agents", "post"),
    }
)
_RUN_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    (_RUN, "get"): {"$ref": "#/components/schemas/Run"},
    ("/v1/runs", "get"): {"type": "array", "items": {"$ref": "#/components/schemas/Run"}},
}
_NULLABLE_TEXT = {"type": ["string", "null"]}
_RUN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["run_id", "status", "payload_sealed", "payload_redacted"],
    "properties": {
        "run_id": {"type": "string"},
        "room_id": {"type": ["string", "null"]},
        "status": {"enum": ["pending", "running", "completed", "failed"]},
        "prompt": _NULLABLE_TEXT,
        "output": _NULLABLE_TEXT,
        "error": _NULLABLE_TEXT,
        "artifacts": {"type": "array", "items": {"type": "string"}},
        "payload_sealed": {
            "type": "boolean",
            "description": "Sealed fields read null: the room key is not open for the "
            "caller, the room was revoked, or a stored field failed authentication",
        },
        "payload_redacted": {
            "type": "boolean",
            "description": "An owner viewing a participant's run of a querier_only room",
        },
    },
    "additionalProperties": True,
}


def _error(description: str, code: str, *, always: bool) -> dict[str, Any]:
    coded: dict[str, Any] = {"properties": {"error": {"const": code}}}
    if always:
        coded["required"] = ["error"]
    schema = {"allOf": [{"$ref": "#/components/schemas/Error"}, coded]}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _responses(path: str, method: str) -> dict[str, Any]:
    key = (path, method)
    ok: dict[str, Any] = {"application/json": {}}
    if key in _RUN_BODIES:
        ok = {"application/json": {"schema": _RUN_BODIES[key]}}
    responses: dict[str, Any] = {"200": {"description": "Success", "content": ok}}
    if key in _UNREADABLE_OR_CONFLICT:
        responses["409"] = _error(
            "Stored sealed data failed authentication (the error code says so), or a conflict",
            _UNREADABLE[key],
            always=False,
        )
    elif key in _UNREADABLE:
        responses["409"] = _error(
            "Stored sealed data failed authentication", _UNREADABLE[key], always=True
        )
    if key in _SEALED:
        responses["503"] = _error(
            "Sealed until a credential opens it (the error code says so), or unavailable",
            _SEALED[key],
            always=False,
        )
    responses["default"] = {
        "description": "Error",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    return responses


def _security(path: str) -> list[dict[str, list[str]]]:
    if path in _PUBLIC:
        return []
    if path.startswith("/v1/admin/") and path != "/v1/admin/schema":
        return [{"adminKey": []}]
    return [{"bearer": []}]


def _operation(route: Route, path: str, method: str) -> dict[str, Any]:
    doc = inspect.getdoc(route.endpoint) or ""
    summary = doc.splitlines()[0] if doc else route.path
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PARAM.findall(route.path)
    ]
    op: dict[str, Any] = {
        "operationId": f"{method.lower()}_{route.endpoint.__module__.rsplit('.', 1)[-1]}_"
        f"{route.endpoint.__name__}",
        "summary": summary,
        "security": _security(route.path),
        "responses": _responses(path, method.lower()),
    }
    if params:
        op["parameters"] = params
    return op


def build_openapi(routes: Iterable[BaseRoute], version: str) -> dict[str, Any]:
    """Build the OpenAPI document for ``routes``."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if not isinstance(route, Route) or route.methods is None:
            continue
        path = _PARAM.sub(r"{\1}", route.path)
        for method in sorted(route.methods - {"HEAD"}):
            paths.setdefault(path, {})[method.lower()] = _operation(route, path, method)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Hivemind rooms", "version": version},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Owner key (hmk_) or room invite (hmq_)",
                },
                "adminKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Operator admin key",
                },
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["detail"],
                    "properties": {
                        "detail": {},
                        "error": {
                            "type": "string",
                            "description": "Machine-readable code of some refusals: "
                            "room_sealed, tenant_sealed (503), run_unreadable, "
                            "artifact_unreadable, vault_item_unreadable (409)",
                        },
                    },
                },
                "Run": _RUN_SCHEMA,
            },
        },
    }
