"""The upstream LLM provider client: OpenAI-compatible ``chat/completions`` over HTTPS.

One client serves every provider the operator configured (base URL and API
key per provider, from ``HIVEMIND_LLM_*`` and ``HIVEMIND_TINFOIL_*``). The
bridge's proxy has already sanitised the body and fixed the model; this only
adds the operator's key, sends one request without retries and turns any
failure into :class:`UpstreamError` without echoing the provider's body.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any, final

import httpx

from ._llm import UpstreamError

__all__ = ["HttpUpstream", "ProviderEndpoint", "providers_from_env"]

_MAX_RESPONSE = 8 * 1024 * 1024


@final
@dataclasses.dataclass(frozen=True)
class ProviderEndpoint:
    """Where a provider answers and the operator's key for it."""

    base_url: str
    api_key: str = dataclasses.field(repr=False)


def providers_from_env(env: Mapping[str, str] | None = None) -> dict[str, ProviderEndpoint]:
    """Providers with a configured key (``openrouter`` and ``tinfoil``)."""
    env = os.environ if env is None else env
    found = {}
    key = env.get("HIVEMIND_LLM_API_KEY", "").strip()
    if key:
        url = env.get("HIVEMIND_LLM_BASE_URL", "").strip() or "https://openrouter.ai/api/v1"
        found["openrouter"] = ProviderEndpoint(url.rstrip("/"), key)
    key = env.get("HIVEMIND_TINFOIL_API_KEY", "").strip()
    if key:
        url = env.get("HIVEMIND_TINFOIL_BASE_URL", "").strip() or "https://inference.tinfoil.sh/v1"
        found["tinfoil"] = ProviderEndpoint(url.rstrip("/"), key)
    return found


@final
class HttpUpstream:
    """Sends chat completions to the configured providers.

    Args:
        providers: Endpoint per provider name.
        timeout_s: Seconds per request.
        transport: An httpx transport (tests pass a loopback one).
    """

    def __init__(
        self,
        providers: Mapping[str, ProviderEndpoint],
        *,
        timeout_s: float = 45.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._providers = dict(providers)
        self._timeout = timeout_s
        self._transport = transport

    def __repr__(self) -> str:
        return f"HttpUpstream(providers={sorted(self._providers)})"

    async def chat(
        self, *, provider: str, model: str, request: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Send one completion with the pinned ``model``.

        Raises:
            UpstreamError: unknown provider, transport error, non-200 or bad JSON.
        """
        endpoint = self._providers.get(provider)
        if endpoint is None:
            raise UpstreamError(f"provider {provider!r} is not configured on this service")
        body = {**request, "model": model, "stream": False}
        headers = {"Authorization": f"Bearer {endpoint.api_key}"}
        try:
            async with httpx.AsyncClient(
                timeout=self._timeout, transport=self._transport
            ) as client:
                response = await client.post(
                    f"{endpoint.base_url}/chat/completions", json=body, headers=headers
                )
        except httpx.HTTPError as exc:
            raise UpstreamError(f"provider unreachable ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise UpstreamError(f"provider answered HTTP {response.status_code}")
        if len(response.content) > _MAX_RESPONSE:
            raise UpstreamError("provider response too large")
        try:
            data = response.json()
        except ValueError:
            raise UpstreamError("provider answered with invalid JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise UpstreamError("provider answered without choices")
        return data
