"""Hub-side room mode for released satellites that cannot verify or seal.

Theory of operation
-------------------
A released satellite (``hivemind-bus-client`` 0.4.x) can only send plain bus
messages. With this agent installed as the hub's agent protocol
(``hivemind-room-bridge-agent``) *and* ``legacy_mode: true`` in its config
(off by default), the hub operator's accepted room (an invite link) and
profile (payer key, attestation trust) act for such satellites: on a
``hivemind.room.legacy.ask`` the agent connects to a hub on the route as an
ordinary participant (normally its own hub, with a credential granted the
room types), verifies the room and the signed answer with
:class:`RoomBridgeClient` exactly as a participant would, and sends the
answer back to the asking satellite as ``hivemind.room.legacy.answer``.

The satellite verifies nothing itself, so every answer (and every error) is
labelled ``verified by hub <node_id> on behalf of this satellite``; the hub
reads the prompt and the answer, which is the price of this mode and why it
is off unless the operator turns it on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, final

import trio
from hivemind_proto.trio import HiveRefused, HiveUnavailable, SatelliteIdentity, open_hive

from ..attestation import VerificationPolicy
from ..links import LinkError, RoomLink
from .client import BridgeError, RoomBridgeClient

__all__ = ["LEGACY_ANSWER", "LEGACY_ASK", "RoomBridgeAgent"]

LEGACY_ASK = "hivemind.room.legacy.ask"
LEGACY_ANSWER = "hivemind.room.legacy.answer"
_QUEUE = 64
_CONCURRENT = 4
_MAX_QUESTION = 20_000


@final
class RoomBridgeAgent:
    """The hub agent that asks the operator's room for legacy satellites.

    Args:
        config: ``legacy_mode`` (must be ``true`` to act), ``room_link``,
            ``payer_key``, ``via_hub_url``, ``access_key``, ``password``,
            ``dev_roots`` (trusted dev attestation roots), ``allow_dev``,
            ``timeout`` (seconds).
    """

    name = "room-bridge"
    answers_queries = False

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        cfg = dict(config or {})
        self.enabled = cfg.get("legacy_mode") is True
        self.room_link = str(cfg.get("room_link") or "")
        self._payer_key = str(cfg.get("payer_key") or "")
        self.via_hub_url = str(cfg.get("via_hub_url") or "")
        self._access_key = str(cfg.get("access_key") or "")
        self._password = str(cfg.get("password") or "")
        self.timeout = float(cfg.get("timeout") or 300)
        self.policy = VerificationPolicy(
            allow_dev=cfg.get("allow_dev") is True,
            dev_roots=frozenset(str(r) for r in cfg.get("dev_roots") or ()),
        )
        self.node_id = "hub"
        self.dropped = 0
        self._send, self._recv = trio.open_memory_channel[dict[str, Any]](_QUEUE)

    def __repr__(self) -> str:
        return f"RoomBridgeAgent(enabled={self.enabled}, via_hub_url={self.via_hub_url!r})"

    def emit(self, message: Mapping[str, Any]) -> bool:
        """Queue a legacy room request (other messages are not for this agent)."""
        if message.get("type") != LEGACY_ASK:
            return False
        try:
            self._send.send_nowait(dict(message))
        except trio.WouldBlock:
            self.dropped += 1
            return False
        return True

    async def run(self, host: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Answer queued requests until cancelled (at most four at once)."""
        identity = getattr(host, "identity", None)
        self.node_id = str(getattr(identity, "node_id", "hub"))
        limiter = trio.CapacityLimiter(_CONCURRENT)
        task_status.started()
        async with trio.open_nursery() as nursery:
            async for message in self._recv:
                nursery.start_soon(self._handle, host, message, limiter)

    @property
    def label(self) -> str:
        """The label every relayed answer carries."""
        return f"verified by hub {self.node_id} on behalf of this satellite"

    async def _handle(
        self, host: Any, message: dict[str, Any], limiter: trio.CapacityLimiter
    ) -> None:
        context = message.get("context") if isinstance(message.get("context"), dict) else {}
        peer = context.get("peer") or context.get("source")
        async with limiter:
            data = await self._answer(message.get("data"))
        data["label"] = self.label
        data["verified_by"] = self.node_id
        host.deliver(
            {"type": LEGACY_ANSWER, "data": data, "context": {"source": "room-bridge",
                                                              "destination": peer}}
        )  # fmt: skip

    async def _answer(self, data: Any) -> dict[str, Any]:
        if not self.enabled:
            return {"error": "the hub-side room mode is off on this hub"}
        question = data.get("question") if isinstance(data, dict) else None
        if not isinstance(question, str) or not question or len(question) > _MAX_QUESTION:
            return {"error": "a question is required"}
        try:
            link = RoomLink.parse(self.room_link)
        except LinkError:
            return {"error": "this hub has no accepted room"}
        identity = SatelliteIdentity(
            access_key=self._access_key,
            password=self._password,
            useragent=f"RoomBridge-{self.node_id}",
        )
        try:
            with trio.fail_after(self.timeout):
                async with open_hive(self.via_hub_url, identity) as client:
                    bridge = RoomBridgeClient(client, policy=self.policy, timeout=self.timeout)
                    room = await bridge.verify_room(link)
                    answer = await bridge.ask(room, question, payer_key=self._payer_key or None)
        except (BridgeError, HiveRefused, HiveUnavailable, trio.TooSlowError) as exc:
            return {"error": str(exc) or type(exc).__name__}
        return {
            "answer": answer.output,
            "room_id": link.room_id,
            "run_id": answer.run_id,
            "status": answer.status,
            "checks": list(answer.checks),
        }
