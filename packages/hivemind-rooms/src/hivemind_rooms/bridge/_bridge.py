"""The per-stage bridge: inputs, tools, the LLM proxy, output and artifacts.

One :class:`Bridge` serves one stage of one run. Its routes:

- ``GET /health``: status, role and budget.
- ``GET /inputs``: the stage inputs (prompt, policy, raw output for the
  mediator, scope source for the query agent). Inputs never travel in
  environment variables, so their size is bounded only by the body limit.
- ``GET /tools`` and ``POST /tools/{name}`` (``{"arguments": {...}}``):
  data tools, FULL_READ for scope, SCOPED for query, none for the mediator.
- ``POST /v1/chat/completions``: the OpenAI-compatible LLM proxy.
- ``POST /output`` (``{"output": str}``): the stage's answer.
- ``POST /artifacts`` (``{filename, content_base64}``): only for a query stage
  of a room that allows artifacts and pins no mediator.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any, Final, final

from ._artifacts import ArtifactError, ArtifactStore
from ._http import HttpRequest, HttpResponse, json_response
from ._llm import LlmProxy, LlmRefused
from ._tools import DataTools, ToolError

__all__ = ["Bridge"]

_MAX_OUTPUT: Final = 4 * 1024 * 1024


def _error(status: int, message: str) -> HttpResponse:
    return json_response(status, {"error": {"message": message, "code": status}})


def _json(request: HttpRequest) -> Any:
    try:
        return json.loads(request.body or b"{}")
    except ValueError:
        return None


@final
class Bridge:
    """Routes of one stage's bridge.

    Args:
        role: ``scope``, ``query`` or ``mediator``.
        inputs: What ``GET /inputs`` answers.
        llm: The stage's LLM proxy.
        tools: Data tools (None for the mediator).
        artifacts: Artifact store, when this stage may upload.
    """

    def __init__(
        self,
        role: str,
        inputs: Mapping[str, Any],
        llm: LlmProxy,
        tools: DataTools | None = None,
        artifacts: ArtifactStore | None = None,
    ) -> None:
        self.role = role
        self._inputs = dict(inputs)
        self.llm = llm
        self.tools = tools
        self.artifacts = artifacts
        self.output: str | None = None
        self.tool_errors = 0

    def __repr__(self) -> str:
        return f"Bridge(role={self.role!r})"

    async def handle(self, request: HttpRequest) -> HttpResponse:
        """Answer one request."""
        route = (request.method, request.path)
        if route == ("GET", "/health"):
            body = {"status": "ok", "role": self.role, "budget": self.llm.budget.to_dict()}
            return json_response(200, body)
        if route == ("GET", "/inputs"):
            return json_response(200, self._inputs)
        if route == ("GET", "/tools"):
            return json_response(200, self.tools.definitions() if self.tools else [])
        if request.method == "POST" and request.path.startswith("/tools/"):
            return await self._tool(request.path.removeprefix("/tools/"), _json(request))
        if route == ("POST", "/v1/chat/completions"):
            return await self._chat(_json(request))
        if route == ("POST", "/output"):
            return self._output(_json(request))
        if route == ("POST", "/artifacts") and self.artifacts is not None:
            return self._artifact(_json(request))
        return _error(404, "not found")

    async def _tool(self, name: str, body: Any) -> HttpResponse:
        if self.tools is None:
            return json_response(200, {"result": None, "error": "this stage has no tools"})
        arguments = body.get("arguments", {}) if isinstance(body, dict) else None
        if not isinstance(arguments, dict):
            return _error(400, 'send {"arguments": {...}}')
        try:
            result = await self.tools.call(name, arguments)
        except ToolError as exc:
            self.tool_errors += 1
            return json_response(200, {"result": None, "error": str(exc)})
        return json_response(200, {"result": result, "error": None})

    async def _chat(self, body: Any) -> HttpResponse:
        try:
            return json_response(200, await self.llm.complete(body))
        except LlmRefused as exc:
            return _error(exc.status, str(exc))

    def _output(self, body: Any) -> HttpResponse:
        text = body.get("output") if isinstance(body, dict) else None
        if not isinstance(text, str):
            return _error(400, 'send {"output": str}')
        if len(text.encode("utf-8")) > _MAX_OUTPUT:
            return _error(413, "output too large")
        self.output = text
        return json_response(200, {"ok": True})

    def _artifact(self, body: Any) -> HttpResponse:
        assert self.artifacts is not None
        if not isinstance(body, dict) or not isinstance(body.get("filename"), str):
            return _error(400, "send {filename, content_base64}")
        try:
            content = base64.b64decode(str(body.get("content_base64", "")), validate=True)
            self.artifacts.store(body["filename"], content)
        except (binascii.Error, ValueError):
            return _error(400, "content_base64 is not valid base64")
        except ArtifactError as exc:
            return _error(exc.status, str(exc))
        return json_response(200, {"filename": body["filename"], "size_bytes": len(content)})
