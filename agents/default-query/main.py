"""Default query agent: answers from the scoped tables and vault items, no LLM needed.

A prompt that contains ``SQL: <statement>`` runs that statement; otherwise
the agent reads up to 50 rows of every table the scope lets it see, plus the
room's vault items, and renders them as Markdown.
"""

from __future__ import annotations

import re

from hivemind_agent import Bridge, BridgeError, markdown_table


def sections(bridge: Bridge, prompt: str) -> list[str]:
    """Collect the Markdown sections of the answer."""
    match = re.search(r"SQL:\s*(.+)", prompt, re.IGNORECASE | re.DOTALL)
    if match:
        try:
            rows = bridge.tool("execute_sql", sql=match.group(1).strip())["rows"]
        except BridgeError as exc:
            return [f"The query was not answered: {exc.message}"]
        return [markdown_table(rows) or "(no rows)"]
    out = []
    schema = bridge.tool("get_schema")["rows"]
    for table in sorted({str(r.get("table", "")) for r in schema if r.get("table")}):
        try:
            rows = bridge.tool("execute_sql", sql=f'SELECT * FROM "{table}" LIMIT 50')["rows"]
        except BridgeError as exc:
            out.append(f"### {table}\n{exc.message}")
            continue
        out.append(f"### {table}\n{markdown_table(rows) or '(no rows)'}")
    if any(t["function"]["name"] == "get_room_vault_items" for t in bridge.tools()):
        try:
            items = bridge.tool("get_room_vault_items")["rows"]
            notes = "\n".join(f"- {i.get('text', '')}" for i in items)
            out.append("### Room notes\n" + (notes or "(none)"))
        except BridgeError as exc:
            out.append(f"### Room notes\n{exc.message}")
    return out


def main() -> None:
    """Answer the prompt."""
    bridge = Bridge()
    prompt = str(bridge.inputs().get("prompt", ""))
    body = "\n\n".join(sections(bridge, prompt))
    bridge.finish(f"Answer to: {prompt.splitlines()[0] if prompt else ''}\n\n{body}")


if __name__ == "__main__":
    main()
