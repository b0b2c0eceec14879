"""LLM query agent: a tool-calling loop over the bridge's OpenAI endpoint.

The model sees the prompt and the room's tools (already scoped by the scope
function); each tool call goes to the bridge, each result back to the model,
for at most eight rounds. If the LLM is unavailable (egress disabled, budget
spent) the agent says so instead of guessing.
"""

from __future__ import annotations

import json

from hivemind_agent import Bridge, BridgeError, LlmUnavailable

SYSTEM = (
    "You answer questions about a private data room. Use the tools to read data; "
    "answer concisely in Markdown and never invent values."
)


def run(bridge: Bridge, prompt: str) -> str:
    """Drive the loop; return the final answer."""
    tools = bridge.tools()
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]
    for _ in range(8):
        reply = bridge.chat(messages, tools=tools, max_tokens=1024)
        message = reply["choices"][0]["message"]
        messages.append(message)
        calls = message.get("tool_calls") or []
        if not calls:
            return str(message.get("content") or "")
        for call in calls:
            name = call["function"]["name"]
            try:
                arguments = json.loads(call["function"].get("arguments") or "{}")
                result = bridge.tool(name, **arguments)
            except (BridgeError, ValueError) as exc:
                result = {"error": str(exc)}
            messages.append(
                {"role": "tool", "tool_call_id": call.get("id", ""), "content": json.dumps(result)}
            )
    return "The question needed more steps than this agent allows."


def main() -> None:
    """Answer the prompt with the LLM."""
    bridge = Bridge()
    prompt = str(bridge.inputs().get("prompt", ""))
    try:
        answer = run(bridge, prompt)
    except LlmUnavailable as exc:
        answer = f"The language model is unavailable for this run: {exc.message}"
    bridge.finish(answer)


if __name__ == "__main__":
    main()
