"""The bridge's OpenAI-compatible LLM proxy: allowlist, pinned model, budget, tape.

Theory of operation. An agent never talks to a provider; it posts an OpenAI
``chat/completions`` body to its bridge. The proxy keeps only the parameters
it knows (``messages``, ``max_tokens``, ``temperature``, ``top_p``, ``stop``,
``seed``, ``tools``, ``tool_choice``); ``model``, ``extra_body``, provider
routing and anything else are dropped, and the model is the one the server
fixed for this stage. Before each call it estimates the prompt size
(characters / 3), clamps ``max_tokens`` to what is left and refuses with 429
when calls or tokens are spent. After the call it charges the provider's
reported usage (or the estimate when none is reported) and appends
``{request_hash, request, response}`` to the tape, whose hash the run
attestation signs. Calls are serialised per bridge so the budget check and
the charge cannot interleave.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final, Protocol, final

import trio

__all__ = ["Budget", "LlmProxy", "LlmRefused", "Upstream", "UpstreamError"]

_KEPT: Final = ("messages", "max_tokens", "temperature", "top_p", "stop", "seed", "tools",
                "tool_choice")  # fmt: skip
_MAX_MESSAGES: Final = 512
_DEFAULT_COMPLETION: Final = 4096
_MAX_COMPLETION: Final = 16_384


class UpstreamError(Exception):
    """The provider failed; the message is safe to show to the agent."""


class Upstream(Protocol):
    """Sends one chat completion to a provider."""

    async def chat(
        self, *, provider: str, model: str, request: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Return the provider's OpenAI-shaped response.

        Raises:
            UpstreamError: the provider failed or is unreachable.
        """
        ...


class LlmRefused(Exception):
    """The proxy refuses a call: ``status`` (400/403/429/502/503) and a message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@final
@dataclasses.dataclass
class Budget:
    """Token and call budget of one stage, with what was used."""

    max_tokens: int
    max_calls: int
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens used."""
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, int]:
        """JSON form (for ``/health`` and usage)."""
        return {
            "calls": self.calls,
            "max_calls": self.max_calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "max_tokens": self.max_tokens,
        }


def _request_hash(request: Mapping[str, Any]) -> str:
    data = json.dumps(dict(request), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(data.encode("ascii")).hexdigest()


def _sanitise(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise LlmRefused(400, "the request body must be a JSON object")
    if body.get("stream"):
        raise LlmRefused(400, "streaming is not supported by the bridge")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or len(messages) > _MAX_MESSAGES:
        raise LlmRefused(400, f"messages must be a list of 1 to {_MAX_MESSAGES} objects")
    if not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages):
        raise LlmRefused(400, "every message needs a role")
    kept = {k: body[k] for k in _KEPT if body.get(k) is not None}
    tokens = kept.get("max_tokens", _DEFAULT_COMPLETION)
    if not isinstance(tokens, int) or isinstance(tokens, bool) or not tokens >= 1:
        raise LlmRefused(400, "max_tokens must be a positive integer")
    kept["max_tokens"] = min(tokens, _MAX_COMPLETION)
    return kept


def _estimate(messages: list[dict[str, Any]]) -> int:
    chars = 0
    for message in messages:
        content = message.get("content")
        chars += len(content if isinstance(content, str) else json.dumps(content, default=str))
    return max(1, chars // 3)


def _usage(response: Mapping[str, Any], estimate: int, clamp: int) -> tuple[int, int]:
    usage = response.get("usage")
    if isinstance(usage, dict):
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if isinstance(prompt, int) and isinstance(completion, int):
            return max(prompt, 0), max(completion, 0)
    return estimate, clamp


@final
class LlmProxy:
    """One stage's LLM access.

    Args:
        upstream: The provider client, or None when the room allows no egress.
        provider: The provider the room allows and the run selected.
        model: The model fixed for this stage.
        budget: The stage's token and call budget (updated in place).
        timeout_s: Seconds one upstream call may take.
    """

    def __init__(
        self,
        upstream: Upstream | None,
        *,
        provider: str,
        model: str,
        budget: Budget,
        timeout_s: float = 45.0,
    ) -> None:
        self._upstream = upstream
        self.provider = provider
        self.model = model
        self.budget = budget
        self.tape: list[dict[str, Any]] = []
        self.exhausted = ""
        self._timeout = timeout_s
        self._lock = trio.Lock()

    @property
    def enabled(self) -> bool:
        """Whether this stage may reach a provider at all."""
        return self._upstream is not None and bool(self.provider) and bool(self.model)

    async def complete(self, body: Any) -> dict[str, Any]:
        """Proxy one chat completion.

        Raises:
            LlmRefused: egress off (403), bad body (400), budget spent (429),
                provider failure (502).
        """
        if not self.provider or not self.model:
            raise LlmRefused(403, "LLM egress is disabled by this room's manifest")
        if self._upstream is None:
            raise LlmRefused(503, "no LLM provider is configured on this service")
        request = _sanitise(body)
        async with self._lock:
            return await self._charged_call(request)

    async def _charged_call(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self._upstream is not None
        budget = self.budget
        request_hash = _request_hash(request)
        estimate = _estimate(request["messages"])
        remaining = budget.max_tokens - budget.total_tokens
        clamp = max(1, min(request["max_tokens"], remaining - estimate))
        if budget.calls >= budget.max_calls:
            self.exhausted = f"Budget exhausted: {budget.calls} of {budget.max_calls} calls used"
            raise LlmRefused(429, self.exhausted)
        if remaining <= 0 or estimate + clamp > remaining:
            self.exhausted = (
                f"Budget exhausted: {budget.total_tokens} of {budget.max_tokens} tokens used"
            )
            raise LlmRefused(429, self.exhausted)
        sent = {**request, "max_tokens": clamp}
        budget.calls += 1
        try:
            with trio.fail_after(self._timeout):
                response = await self._upstream.chat(
                    provider=self.provider, model=self.model, request=sent
                )
        except UpstreamError as exc:
            budget.prompt_tokens += estimate
            raise LlmRefused(502, f"provider error: {exc}") from None
        except trio.TooSlowError:
            budget.prompt_tokens += estimate
            raise LlmRefused(502, "provider timed out") from None
        prompt, completion = _usage(response, estimate, clamp)
        budget.prompt_tokens += prompt
        budget.completion_tokens += completion
        response = {**response, "model": self.model}
        self.tape.append({"request_hash": request_hash, "request": sent, "response": response})
        return response
