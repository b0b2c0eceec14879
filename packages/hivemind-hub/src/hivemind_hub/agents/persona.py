"""A persona agent: answers utterances through an OpenAI-compatible chat endpoint.

Theory of operation: ``emit`` queues agent-bus messages (bounded). A worker
pool (``concurrency`` tasks) takes ``recognizer_loop:utterance`` messages,
posts ``{model, messages}`` to ``{base_url}/chat/completions`` with httpx,
and answers with a ``speak`` message built as ``Message.reply`` would: the
context is kept and ``source``/``destination`` swapped, so the answer routes
back to the asking connection only. Every call has a timeout; a failed call
answers with a short apology and logs the error class only (never the
utterance or the key).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import httpx
import trio

from ._base import AgentHost

__all__ = ["PersonaAgent", "reply_to"]

log = logging.getLogger("hivemind_hub.agents.persona")
UTTERANCE = "recognizer_loop:utterance"


def reply_to(message: Mapping[str, Any], msg_type: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """Build a reply the way OVOS ``Message.reply`` does (source and destination swapped)."""
    context = dict(message.get("context") or {})
    context["destination"], context["source"] = context.get("source"), context.get("destination")
    return {"type": msg_type, "data": dict(data), "context": context}


class PersonaAgent:
    """An LLM persona behind an OpenAI-compatible ``/chat/completions`` endpoint.

    Args:
        config: ``{"base_url", "model", "api_key" (optional), "system_prompt",
            "timeout" = 30, "concurrency" = 4, "queue_size" = 256,
            "max_tokens" = 512}``.
    """

    name = "hivemind-persona-agent-plugin"
    answers_queries = True

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        cfg = dict(config or {})
        self.base_url = str(cfg.get("base_url") or "http://127.0.0.1:8000/v1").rstrip("/")
        self.model = str(cfg.get("model") or "persona")
        self._api_key = cfg.get("api_key")
        self.system_prompt = str(cfg.get("system_prompt") or "You are a helpful assistant.")
        self.timeout = float(cfg.get("timeout", 30.0))
        self.concurrency = int(cfg.get("concurrency", 4))
        self.max_tokens = int(cfg.get("max_tokens", 512))
        self._send, self._recv = trio.open_memory_channel[Mapping[str, Any]](
            int(cfg.get("queue_size", 256))
        )
        self.dropped = 0

    def __repr__(self) -> str:
        return f"PersonaAgent(base_url={self.base_url!r}, model={self.model!r})"

    def emit(self, message: Mapping[str, Any]) -> bool:
        """Queue an utterance; other message types are ignored."""
        if message.get("type") != UTTERANCE:
            return False
        try:
            self._send.send_nowait(message)
            return True
        except trio.WouldBlock:
            self.dropped += 1
            log.warning("persona queue full; utterance dropped")
            return False

    async def run(
        self, host: AgentHost, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Answer queued utterances until cancelled."""
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        async with (
            httpx.AsyncClient(timeout=self.timeout, headers=headers) as http,
            trio.open_nursery() as nursery,
        ):
            for _ in range(self.concurrency):
                nursery.start_soon(self._worker, http, host)
            task_status.started()

    async def _worker(self, http: httpx.AsyncClient, host: AgentHost) -> None:
        async for message in self._recv.clone():
            answer = await self._complete(http, message)
            host.deliver(reply_to(message, "speak", {"utterance": answer}))

    async def _complete(self, http: httpx.AsyncClient, message: Mapping[str, Any]) -> str:
        data = message.get("data") or {}
        utterances = data.get("utterances") if isinstance(data, Mapping) else None
        text = str(utterances[0]) if isinstance(utterances, list) and utterances else ""
        body = {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "messages": [
                {"role": "system", "content": self.system_prompt},
                {"role": "user", "content": text},
            ],
        }
        try:
            response = await http.post(f"{self.base_url}/chat/completions", json=body)
            response.raise_for_status()
            return str(response.json()["choices"][0]["message"]["content"])
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
            log.warning("persona provider call failed: %s", type(exc).__name__)
            return "Sorry, I cannot answer right now."
