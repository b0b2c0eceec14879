"""Default scope agent: writes a column-filtering scope function, no LLM needed.

The room policy may carry simple directives, one per line: ``hide: col_a,
col_b`` (columns never shown to the query agent) and ``max rows: N``.
Identifier-like columns are always hidden (see ``column_scope_fn``).
"""

from __future__ import annotations

import json

from hivemind_agent import Bridge, column_scope_fn


def main() -> None:
    """Read the policy from the bridge and answer with the scope function."""
    bridge = Bridge()
    policy = str(bridge.inputs().get("policy", ""))
    bridge.finish(json.dumps({"scope_fn": column_scope_fn(policy)}))


if __name__ == "__main__":
    main()
