"""Default mediator: rule-based redaction of the query output, no LLM needed.

Always removes e-mail addresses, phone numbers and long digit runs. The room
policy may add ``redact: word_a, word_b`` lines; those words are replaced
(case-insensitive). The result is the only answer that leaves the room.
"""

from __future__ import annotations

import re

from hivemind_agent import Bridge

PATTERNS = [
    re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),
    re.compile(r"\+?\d[\d\s().-]{7,}\d"),
    re.compile(r"\b\d{9,}\b"),
]
MASK = "[redacted]"


def redact(text: str, policy: str) -> str:
    """Apply the built-in patterns and the policy's ``redact:`` words."""
    for pattern in PATTERNS:
        text = pattern.sub(MASK, text)
    for line in policy.splitlines():
        match = re.match(r"\s*redact\s*:\s*(.+)", line, re.IGNORECASE)
        if not match:
            continue
        for word in (w.strip() for w in match.group(1).split(",")):
            if word:
                text = re.sub(re.escape(word), MASK, text, flags=re.IGNORECASE)
    return text


def main() -> None:
    """Redact the raw output and release it."""
    bridge = Bridge()
    inputs = bridge.inputs()
    bridge.finish(redact(str(inputs.get("raw_output", "")), str(inputs.get("policy", ""))))


if __name__ == "__main__":
    main()
