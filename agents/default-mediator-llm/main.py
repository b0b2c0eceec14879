"""LLM mediator: asks the model to enforce the room policy, then applies the rule floor.

The model rewrites the raw output to respect the policy; the deterministic
redaction of the default mediator always runs afterwards, so the released
answer is never less redacted than the rule-based one. If the model is
unavailable the rule-based result is released.
"""

from __future__ import annotations

from hivemind_agent import Bridge, LlmUnavailable, redact


def main() -> None:
    """Mediate the raw output."""
    bridge = Bridge()
    inputs = bridge.inputs()
    raw, policy = str(inputs.get("raw_output", "")), str(inputs.get("policy", ""))
    messages = [
        {
            "role": "system",
            "content": "Rewrite the text so it follows the policy. Output only the text.\n"
            f"Policy:\n{policy}",
        },
        {"role": "user", "content": raw},
    ]
    try:
        reply = bridge.chat(messages, max_tokens=2048)
        text = str(reply["choices"][0]["message"].get("content") or "")
    except LlmUnavailable:
        text = raw
    bridge.finish(redact(text, policy))


if __name__ == "__main__":
    main()
