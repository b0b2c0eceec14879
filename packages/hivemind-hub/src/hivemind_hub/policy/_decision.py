"""Policy verdicts and the ``hive.policy.denied`` notice."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

__all__ = ["DENIED_EVENT", "PolicyDecision", "policy_denied_message"]

#: The agent-bus message type sent to a client whose message was refused.
DENIED_EVENT: Final = "hive.policy.denied"


@dataclass(frozen=True)
class PolicyDecision:
    """The verdict of one policy, or of the whole chain.

    Attributes:
        allowed: True to let the message through.
        code: Stable machine-readable reason for a denial (empty when allowed).
        reason: Human-readable explanation.
        data: Extra structured details for the client.
        message: The message as the policy wants it forwarded (a mutated
            copy), or None to leave it unchanged.
    """

    allowed: bool
    code: str = ""
    reason: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    message: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.allowed and not self.code:
            raise ValueError("a denial needs a code")
        object.__setattr__(self, "data", MappingProxyType(dict(self.data)))

    @classmethod
    def allow(cls, message: dict[str, Any] | None = None) -> PolicyDecision:
        """Return an approval, optionally carrying a mutated message."""
        return cls(True, message=message)

    @classmethod
    def deny(
        cls, code: str, reason: str = "", data: Mapping[str, Any] | None = None
    ) -> PolicyDecision:
        """Return a denial with a stable ``code``."""
        return cls(False, code=code, reason=reason, data=dict(data or {}))


def policy_denied_message(
    decision: PolicyDecision,
    *,
    denied_type: str,
    peer: str,
    bin_type: int | None = None,
) -> dict[str, Any]:
    """Build the agent-bus message telling a client its message was refused.

    Args:
        decision: The denial.
        denied_type: The refused message type, or ``"binary"``.
        peer: The client's peer string (the message's destination).
        bin_type: The binary payload type, for binary denials only.

    Returns:
        ``{"type": "hive.policy.denied", "data": {...}, "context": {...}}``.

    Raises:
        ValueError: ``decision`` is not a denial.
    """
    if decision.allowed:
        raise ValueError("only a denial produces a hive.policy.denied message")
    data: dict[str, Any] = {
        "denied_type": denied_type,
        "code": decision.code,
        "reason": decision.reason,
        "data": copy.deepcopy(dict(decision.data)),
    }
    if bin_type is not None:
        data["bin_type"] = int(bin_type)
    return {
        "type": DENIED_EVENT,
        "data": data,
        "context": {"source": "hivemind-core", "destination": peer},
    }
