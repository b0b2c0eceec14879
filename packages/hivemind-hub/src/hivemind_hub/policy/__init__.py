"""The policy admission chain applied to every injected message and binary payload."""

from __future__ import annotations

from ._builtin import (
    BasePolicy,
    DefaultSessionPolicy,
    DenyAllPolicy,
    MessageTypeACLPolicy,
    OVOSAgentPolicy,
    Policy,
)
from ._chain import POLICY_GROUP, ChainLink, PolicyChain, build_policy_chain
from ._decision import DENIED_EVENT, PolicyDecision, policy_denied_message
from ._envelope import check_envelope
from ._view import FrozenDict, FrozenList, ReadOnlyMessageError, freeze, thaw

__all__ = [
    "DENIED_EVENT",
    "POLICY_GROUP",
    "BasePolicy",
    "ChainLink",
    "DefaultSessionPolicy",
    "DenyAllPolicy",
    "FrozenDict",
    "FrozenList",
    "MessageTypeACLPolicy",
    "OVOSAgentPolicy",
    "Policy",
    "PolicyChain",
    "PolicyDecision",
    "ReadOnlyMessageError",
    "build_policy_chain",
    "check_envelope",
    "freeze",
    "policy_denied_message",
    "thaw",
]
