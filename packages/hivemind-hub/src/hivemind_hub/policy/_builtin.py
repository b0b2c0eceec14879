"""The policies every chain starts with, the OVOS agent policy, and the deny-all fallback."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Final, Protocol, runtime_checkable

from hivemind_proto._types import BinaryType

from ..clients import Client
from ._decision import PolicyDecision

__all__ = [
    "BasePolicy",
    "DefaultSessionPolicy",
    "DenyAllPolicy",
    "MessageTypeACLPolicy",
    "OVOSAgentPolicy",
    "Policy",
]

ACL_DISALLOWED: Final = "acl_disallowed_type"
DEFAULT_SESSION_FORBIDDEN: Final = "session_id_default_forbidden"
CHAIN_UNAVAILABLE: Final = "policy_chain_unavailable"


@runtime_checkable
class Policy(Protocol):
    """One admission rule. Messages are plain dicts ``{"type", "data", "context"}``."""

    name: str

    def review(self, client: Client, message: dict[str, Any]) -> PolicyDecision:
        """Judge an agent-bus message the client wants injected."""
        ...

    def review_binary(
        self, client: Client, bin_type: BinaryType, metadata: Mapping[str, Any]
    ) -> PolicyDecision:
        """Judge a binary payload the client sent."""
        ...

    def observe(self, client: Client, message: dict[str, Any]) -> None:
        """See a message after it was admitted and emitted."""
        ...


class BasePolicy:
    """Convenience base: allows binary payloads and ignores observations."""

    name = "base"

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self.config = dict(config or {})

    def review(self, client: Client, message: dict[str, Any]) -> PolicyDecision:
        """Allow the message unchanged."""
        return PolicyDecision.allow()

    def review_binary(
        self, client: Client, bin_type: BinaryType, metadata: Mapping[str, Any]
    ) -> PolicyDecision:
        """Allow the payload."""
        return PolicyDecision.allow()

    def observe(self, client: Client, message: dict[str, Any]) -> None:
        """Do nothing."""


class MessageTypeACLPolicy(BasePolicy):
    """The per-client ``allowed_types`` whitelist; always first, never removable.

    An empty whitelist denies everything, binary included, for admins too.
    """

    name = "message-type-acl"

    def review(self, client: Client, message: dict[str, Any]) -> PolicyDecision:
        """Deny unless the message type is whitelisted for the client."""
        msg_type = message.get("type")
        if isinstance(msg_type, str) and msg_type in client.allowed_types:
            return PolicyDecision.allow()
        return PolicyDecision.deny(
            ACL_DISALLOWED, f"message type {msg_type!r} is not in this client's allowed types"
        )

    def review_binary(
        self, client: Client, bin_type: BinaryType, metadata: Mapping[str, Any]
    ) -> PolicyDecision:
        """Deny binary payloads from clients whose whitelist is empty."""
        if client.allowed_types:
            return PolicyDecision.allow()
        return PolicyDecision.deny(
            ACL_DISALLOWED, "binary payloads need a non-empty allowed types whitelist"
        )


def _session(message: Mapping[str, Any]) -> Mapping[str, Any] | None:
    context = message.get("context")
    if not isinstance(context, Mapping):
        return None
    session = context.get("session")
    return session if isinstance(session, Mapping) else None


class DefaultSessionPolicy(BasePolicy):
    """Non-admin clients may not claim the shared ``default`` session.

    A message without a declared session passes: the hub then applies the
    connection's own session.
    """

    name = "default-session"

    def review(self, client: Client, message: dict[str, Any]) -> PolicyDecision:
        """Deny a non-admin message declaring ``session_id == "default"``."""
        session = _session(message)
        if session is not None and session.get("session_id") == "default" and not client.is_admin:
            return PolicyDecision.deny(
                DEFAULT_SESSION_FORBIDDEN, "only admin clients may use the 'default' session"
            )
        return PolicyDecision.allow()


class OVOSAgentPolicy(BasePolicy):
    """Copy the client's skill/intent blacklists into the OVOS session.

    Reads ``metadata["skill_blacklist"]``/``["intent_blacklist"]`` and merges
    them into ``context.session.blacklisted_skills``/``blacklisted_intents``
    (existing entries kept, no duplicates). Registered as the entry point
    ``hivemind-ovos-agent-policy`` in group ``hivemind.policy``.
    """

    name = "hivemind-ovos-agent-policy"

    def review(self, client: Client, message: dict[str, Any]) -> PolicyDecision:
        """Return the message with the blacklists merged into its session."""
        skills, intents = client.skill_blacklist, client.intent_blacklist
        if not skills and not intents:
            return PolicyDecision.allow()
        mutated = copy.deepcopy(message)
        context = mutated.get("context")
        if not isinstance(context, dict):
            context = mutated["context"] = {}
        session = context.get("session")
        if not isinstance(session, dict):
            session = context["session"] = {}
        for key, extra in (("blacklisted_skills", skills), ("blacklisted_intents", intents)):
            current = session.get(key)
            base = [str(x) for x in current] if isinstance(current, list) else []
            session[key] = list(dict.fromkeys([*base, *extra]))
        return PolicyDecision.allow(mutated)


class DenyAllPolicy(BasePolicy):
    """Installed when the configured chain cannot be built: refuses everything."""

    name = "deny-all"

    def __init__(self, reason: str = "the policy chain could not be built") -> None:
        super().__init__()
        self.reason = reason

    def review(self, client: Client, message: dict[str, Any]) -> PolicyDecision:
        """Deny with ``policy_chain_unavailable``."""
        return PolicyDecision.deny(CHAIN_UNAVAILABLE, self.reason)

    def review_binary(
        self, client: Client, bin_type: BinaryType, metadata: Mapping[str, Any]
    ) -> PolicyDecision:
        """Deny with ``policy_chain_unavailable``."""
        return PolicyDecision.deny(CHAIN_UNAVAILABLE, self.reason)
