"""The context rewrite applied before an admitted message reaches the agent bus (spec §7.2).

Pure function over plain dicts, so it is tested without a bus or a socket.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from .policy._view import thaw

__all__ = ["prepare_injection"]


def prepare_injection(
    message: Mapping[str, Any], *, peer: str, session: Mapping[str, Any]
) -> dict[str, Any]:
    """Return the agent-bus message to emit for an admitted client message.

    * ``context.session`` becomes the connection's session, keeping any
      ``blacklisted_skills``/``blacklisted_intents`` the policy chain merged
      into the message's own session, with null fields dropped;
    * ``speak`` goes to the hub's own audio (``destination = ["audio"]``);
      otherwise a missing or null ``destination`` becomes ``"skills"``;
    * ``context.peer`` and ``context.source`` name the sending connection, so
      replies route back to it and to nobody else.

    Args:
        message: The admitted ``{"type", "data", "context"}`` message.
        peer: The sending connection's peer string.
        session: The connection's current session (serialized OVOS session).

    Returns:
        A new message; the inputs are not modified.
    """
    out = thaw(message)
    out.setdefault("data", {})
    context = out.get("context")
    if not isinstance(context, dict):
        context = {}
    merged = {k: v for k, v in copy.deepcopy(dict(session)).items() if v is not None}
    declared = context.get("session")
    if isinstance(declared, Mapping):
        for key in ("blacklisted_skills", "blacklisted_intents"):
            extra = declared.get(key)
            if isinstance(extra, list):
                current = merged.get(key)
                base: list[Any] = current if isinstance(current, list) else []
                merged[key] = list(dict.fromkeys([*base, *extra]))
    context["session"] = merged
    if out.get("type") == "speak":
        context["destination"] = ["audio"]
    elif context.get("destination") is None:
        context["destination"] = "skills"
    context["peer"] = peer
    context["source"] = peer
    out["context"] = context
    return out
