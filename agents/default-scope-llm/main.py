"""LLM scope agent: asks the model for a scope function that enforces the room policy.

The model sees the policy, the question and the schema (never row data) and
must answer with ``{"scope_fn": "..."}``. The service checks the function
before using it; when the model is unavailable or its answer has no
``def scope(``, the agent falls back to the deterministic column filter.
"""

from __future__ import annotations

import json

from hivemind_agent import Bridge, LlmUnavailable, column_scope_fn

INSTRUCTIONS = (
    "Write a Python function `def scope(sql, params, rows):` that returns "
    '{"allow": True, "rows": <filtered rows>} so the rows respect the policy. '
    "Use only plain Python: no imports, no attribute names starting with _, no classes. "
    'Answer with JSON only: {"scope_fn": "<source>"}.'
)


def ask_model(bridge: Bridge, inputs: dict) -> str | None:
    """Return the model's scope source, or None."""
    schema = bridge.tool("get_schema")["rows"]
    prompt = json.dumps(
        {"policy": inputs.get("policy", ""), "question": inputs.get("prompt", ""), "schema": schema}
    )
    messages = [{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": prompt}]
    reply = bridge.chat(messages, max_tokens=2048, temperature=0)
    text = str(reply["choices"][0]["message"].get("content") or "")
    start, end = text.find("{"), text.rfind("}")
    try:
        source = json.loads(text[start : end + 1]).get("scope_fn") if start >= 0 else None
    except ValueError:
        return None
    return source if isinstance(source, str) and "def scope(" in source else None


def main() -> None:
    """Answer with a scope function (the model's, or the deterministic fallback)."""
    bridge = Bridge()
    inputs = bridge.inputs()
    try:
        source = ask_model(bridge, inputs)
    except LlmUnavailable:
        source = None
    bridge.finish(
        json.dumps({"scope_fn": source or column_scope_fn(str(inputs.get("policy", "")))})
    )


if __name__ == "__main__":
    main()
