"""Example query agent: runs the one SQL statement given in the prompt."""

from __future__ import annotations

from hivemind_agent import Bridge, BridgeError, markdown_table


def main() -> None:
    """Run the prompt as SQL and print the scoped rows."""
    bridge = Bridge()
    sql = str(bridge.inputs().get("prompt", "")).strip()
    try:
        rows = bridge.tool("execute_sql", sql=sql)["rows"]
        bridge.finish(markdown_table(rows) or "(no rows)")
    except BridgeError as exc:
        bridge.finish(f"refused: {exc.message}")


if __name__ == "__main__":
    main()
