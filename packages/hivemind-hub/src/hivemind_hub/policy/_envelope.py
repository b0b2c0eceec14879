"""Per-client permission for the routing envelope types (spec §6.1, §7.1; W19).

The policy chain judges the agent-bus message a client wants injected; this
module judges the envelope around it. BROADCAST needs ``is_admin`` and
``can_broadcast`` (the legacy hub ignored ``can_broadcast``); PROPAGATE and
CASCADE need ``can_propagate``; ESCALATE and QUERY need ``can_escalate``.
Other types carry no envelope-level grant. The hub disconnects a client whose
envelope is refused instead of only logging it.
"""

from __future__ import annotations

from typing import Final

from hivemind_proto._types import MessageType

from ..clients import Client
from ._decision import PolicyDecision

__all__ = ["check_envelope"]

BROADCAST_FORBIDDEN: Final = "broadcast_forbidden"
PROPAGATE_FORBIDDEN: Final = "propagate_forbidden"
ESCALATE_FORBIDDEN: Final = "escalate_forbidden"


def check_envelope(client: Client, msg_type: MessageType) -> PolicyDecision:
    """Decide whether ``client`` may send an envelope of type ``msg_type``.

    Args:
        client: The sender's current record.
        msg_type: The envelope's ``msg_type``.

    Returns:
        An approval, or a denial with ``broadcast_forbidden``,
        ``propagate_forbidden`` or ``escalate_forbidden``.
    """
    if msg_type is MessageType.BROADCAST:
        if client.is_admin and client.can_broadcast:
            return PolicyDecision.allow()
        return PolicyDecision.deny(
            BROADCAST_FORBIDDEN, "BROADCAST needs an admin client allowed to broadcast"
        )
    if msg_type in (MessageType.PROPAGATE, MessageType.CASCADE):
        if client.can_propagate:
            return PolicyDecision.allow()
        return PolicyDecision.deny(PROPAGATE_FORBIDDEN, f"{msg_type.value} is not allowed")
    if msg_type in (MessageType.ESCALATE, MessageType.QUERY):
        if client.can_escalate:
            return PolicyDecision.allow()
        return PolicyDecision.deny(ESCALATE_FORBIDDEN, f"{msg_type.value} is not allowed")
    return PolicyDecision.allow()
