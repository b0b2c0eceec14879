"""Two-party example: find a dinner evening that suits both people.

Alice's room holds her calendar (table ``evenings(day, free)``). Bob uploads
this agent as a sealed query agent; his own free evenings travel inside it
(``bob.json``). The agent intersects the two and answers only the first
common evening, so neither side learns the other's calendar; the room's
mediator releases nothing else.
"""

from __future__ import annotations

import json
from pathlib import Path

from hivemind_agent import Bridge, BridgeError


def main() -> None:
    """Answer with the first evening both are free."""
    bridge = Bridge()
    mine = json.loads((Path(__file__).parent / "bob.json").read_text())["free"]
    try:
        rows = bridge.tool("execute_sql", sql="SELECT day FROM evenings WHERE free = 1")["rows"]
    except BridgeError as exc:
        bridge.finish(f"no answer: {exc.message}")
        return
    theirs = {str(r.get("day")) for r in rows}
    common = [day for day in mine if day in theirs]
    bridge.finish(f"Dinner on {common[0]}." if common else "No common evening.")


if __name__ == "__main__":
    main()
