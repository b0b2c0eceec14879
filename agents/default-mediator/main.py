"""Default mediator: rule-based redaction of the query output, no LLM needed.

Always removes e-mail addresses, phone numbers and long digit runs; the room
policy may add ``redact: word_a, word_b`` lines. The result is the only
answer that leaves the room.
"""

from __future__ import annotations

from hivemind_agent import Bridge, redact


def main() -> None:
    """Redact the raw output and release it."""
    bridge = Bridge()
    inputs = bridge.inputs()
    bridge.finish(redact(str(inputs.get("raw_output", "")), str(inputs.get("policy", ""))))


if __name__ == "__main__":
    main()
