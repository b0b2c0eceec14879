"""Default scope agent: writes a column-filtering scope function, no LLM needed.

The room policy may carry simple directives, one per line:

- ``hide: col_a, col_b``: columns never shown to the query agent;
- ``max rows: N``: at most N rows per tool call.

Identifier-like columns (``*_id``, ``id``, ``email``, ``phone``, ``ssn``,
``password``, ``token``, ``address``) are always hidden.
"""

from __future__ import annotations

import json
import re

from hivemind_agent import Bridge

ALWAYS_HIDDEN = ["id", "email", "phone", "ssn", "password", "token", "address", "item_id"]

TEMPLATE = """
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


def directives(policy: str) -> tuple[list[str], int]:
    """Parse ``hide:`` and ``max rows:`` lines of the policy."""
    hidden = list(ALWAYS_HIDDEN)
    cap = 200
    for line in policy.splitlines():
        match = re.match(r"\s*hide\s*:\s*(.+)", line, re.IGNORECASE)
        if match:
            hidden += [c.strip().lower() for c in match.group(1).split(",") if c.strip()]
        match = re.match(r"\s*max rows\s*:\s*(\d+)", line, re.IGNORECASE)
        if match:
            cap = max(0, min(int(match.group(1)), 10_000))
    return sorted(set(hidden)), cap


def build_scope_fn(policy: str) -> str:
    """Return the scope function source for a policy."""
    hidden, cap = directives(policy)
    return TEMPLATE.replace("HIDDEN", json.dumps(hidden)).replace("CAP", str(cap)).strip() + "\n"


def main() -> None:
    """Read the policy from the bridge and answer with the scope function."""
    bridge = Bridge()
    inputs = bridge.inputs()
    bridge.finish(json.dumps({"scope_fn": build_scope_fn(str(inputs.get("policy", "")))}))


if __name__ == "__main__":
    main()
