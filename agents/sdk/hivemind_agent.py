"""Agent SDK: talk to the per-run bridge over its unix socket (stdlib only).

An agent runs inside a sandbox with no network. Its only channel is the
bridge socket whose path is in ``HIVEMIND_BRIDGE_SOCKET`` (by default
``/run/hivemind/bridge.sock``). Everything else comes from the bridge: the
inputs (prompt, policy, raw output for a mediator), the data tools, the LLM
(OpenAI-compatible) and the place to put the answer.

    from hivemind_agent import Bridge
    bridge = Bridge()
    inputs = bridge.inputs()
    rows = bridge.tool("execute_sql", sql="SELECT 1 AS one")["rows"]
    bridge.finish("the answer")

The build copies this one file next to each agent's ``main.py``.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import socket
import sys
from typing import Any

__all__ = [
    "Bridge",
    "BridgeError",
    "LlmUnavailable",
    "column_scope_fn",
    "markdown_table",
    "redact",
]

DEFAULT_SOCKET = "/run/hivemind/bridge.sock"


class BridgeError(RuntimeError):
    """The bridge answered with an error (``status`` and message)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"bridge error {status}: {message}")
        self.status = status
        self.message = message


class LlmUnavailable(BridgeError):
    """The LLM refused: egress disabled (403), budget spent (429) or provider failure."""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("bridge", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class Bridge:
    """A client of this stage's bridge.

    Args:
        path: The socket path (``HIVEMIND_BRIDGE_SOCKET`` by default).
        timeout: Seconds per request.
    """

    def __init__(self, path: str | None = None, timeout: float = 120.0) -> None:
        self.path = path or os.environ.get("HIVEMIND_BRIDGE_SOCKET") or DEFAULT_SOCKET
        self.timeout = timeout
        self._inputs: dict[str, Any] | None = None

    def request(self, method: str, route: str, body: Any = None) -> tuple[int, Any]:
        """Send one request; return ``(status, decoded JSON)``."""
        conn = _UnixConnection(self.path, self.timeout)
        try:
            data = None if body is None else json.dumps(body).encode("utf-8")
            headers = {"content-type": "application/json"} if data is not None else {}
            conn.request(method, route, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
            return response.status, json.loads(raw or b"null")
        finally:
            conn.close()

    def _ok(self, method: str, route: str, body: Any = None) -> Any:
        status, value = self.request(method, route, body)
        if status != 200:
            message = value.get("error", value) if isinstance(value, dict) else value
            if isinstance(message, dict):
                message = message.get("message", "")
            raise BridgeError(status, str(message))
        return value

    def inputs(self) -> dict[str, Any]:
        """The stage inputs: ``role``, ``prompt``, ``policy``, ``raw_output`` ..."""
        if self._inputs is None:
            self._inputs = self._ok("GET", "/inputs")
        return self._inputs

    def health(self) -> dict[str, Any]:
        """Status, role and budget."""
        return self._ok("GET", "/health")

    def tools(self) -> list[dict[str, Any]]:
        """OpenAI function definitions of the tools this stage may call."""
        return self._ok("GET", "/tools")

    def tool(self, name: str, **arguments: Any) -> Any:
        """Call a tool; return its result.

        Raises:
            BridgeError: the tool refused (status 200 with an error) or the call failed.
        """
        value = self._ok("POST", f"/tools/{name}", {"arguments": arguments})
        if value.get("error"):
            raise BridgeError(200, str(value["error"]))
        return value["result"]

    def chat(self, messages: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
        """One OpenAI-compatible chat completion through the bridge.

        Raises:
            LlmUnavailable: egress off, budget exhausted or provider error.
        """
        status, value = self.request(
            "POST", "/v1/chat/completions", {"messages": messages, **options}
        )
        if status != 200:
            error = value.get("error", {}) if isinstance(value, dict) else {}
            raise LlmUnavailable(status, str(error.get("message", error)))
        return value

    def upload_artifact(self, filename: str, content: bytes) -> dict[str, Any]:
        """Store a file with the answer (only where the room allows it)."""
        body = {"filename": filename, "content_base64": base64.b64encode(content).decode()}
        return self._ok("POST", "/artifacts", body)

    def finish(self, output: str) -> None:
        """Hand the stage's answer to the bridge and print it."""
        self._ok("POST", "/output", {"output": output})
        sys.stdout.write(output if output.endswith("\n") else output + "\n")
        sys.stdout.flush()


def markdown_table(rows: list[dict[str, Any]], limit: int = 50) -> str:
    """Render rows as a Markdown table (empty string for no rows)."""
    if not rows:
        return ""
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows[:limit]:
        cells = [str(row.get(c, "")).replace("|", "\\|").replace("\n", " ") for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


ALWAYS_HIDDEN = ("id", "email", "phone", "ssn", "password", "token", "address", "item_id")

_SCOPE_TEMPLATE = """
def hidden_columns():
    return HIDDEN


def row_cap():
    return CAP


def keep(name):
    lowered = str(name).lower()
    if lowered in hidden_columns():
        return False
    return not lowered.endswith("_id")


def scope(sql, params, rows):
    out = []
    for row in rows[: row_cap()]:
        kept = {}
        for key in row:
            if keep(key):
                kept[key] = row[key]
        out.append(kept)
    return {"allow": True, "rows": out}
"""


def column_scope_fn(policy: str) -> str:
    """A scope function that drops identifier-like and policy-hidden columns.

    Policy directives (one per line): ``hide: col_a, col_b`` and ``max rows: N``.
    Columns named ``id``, ``email``, ``phone``, ``ssn``, ``password``, ``token``,
    ``address`` or ending in ``_id`` are always dropped.
    """
    hidden = set(ALWAYS_HIDDEN)
    cap = 200
    for line in policy.splitlines():
        match = re.match(r"\s*hide\s*:\s*(.+)", line, re.IGNORECASE)
        if match:
            hidden |= {c.strip().lower() for c in match.group(1).split(",") if c.strip()}
        match = re.match(r"\s*max rows\s*:\s*(\d+)", line, re.IGNORECASE)
        if match:
            cap = max(0, min(int(match.group(1)), 10_000))
    source = _SCOPE_TEMPLATE.replace("HIDDEN", json.dumps(sorted(hidden)))
    return source.replace("CAP", str(cap)).strip() + "\n"


_PII = (
    re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),
    re.compile(r"\+?\d[\d\s().-]{7,}\d"),
    re.compile(r"\b\d{9,}\b"),
)


def redact(text: str, policy: str = "", mask: str = "[redacted]") -> str:
    """Remove e-mail addresses, phone numbers, long digit runs and ``redact:`` words."""
    for pattern in _PII:
        text = pattern.sub(mask, text)
    for line in policy.splitlines():
        match = re.match(r"\s*redact\s*:\s*(.+)", line, re.IGNORECASE)
        for word in (w.strip() for w in (match.group(1).split(",") if match else [])):
            if word:
                text = re.sub(re.escape(word), mask, text, flags=re.IGNORECASE)
    return text
