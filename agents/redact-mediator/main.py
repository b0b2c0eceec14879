"""Example mediator: removes every word the policy lists after ``redact:``."""

from __future__ import annotations

import re

from hivemind_agent import Bridge


def main() -> None:
    """Release the raw output without the policy's words."""
    bridge = Bridge()
    inputs = bridge.inputs()
    text, policy = str(inputs.get("raw_output", "")), str(inputs.get("policy", ""))
    for line in policy.splitlines():
        if line.lower().startswith("redact:"):
            for word in filter(None, (w.strip() for w in line[7:].split(","))):
                text = re.sub(re.escape(word), "█" * len(word), text, flags=re.IGNORECASE)
    bridge.finish(text)


if __name__ == "__main__":
    main()
