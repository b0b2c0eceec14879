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


def _security(path: str) -> list[dict[str, list[str]]]:
    if path in _PUBLIC:
        return []
    if path.startswith("/v1/admin/") and path != "/v1/admin/schema":
        return [{"adminKey": []}]
    return [{"bearer": []}]


def _operation(route: Route, method: str) -> dict[str, Any]:
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
        "responses": {
            "200": {"description": "Success", "content": {"application/json": {}}},
            "default": {
                "description": "Error",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        },
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
            paths.setdefault(path, {})[method.lower()] = _operation(route, method)
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
                    "properties": {"detail": {}, "error": {"type": "string"}},
                }
            },
        },
    }
