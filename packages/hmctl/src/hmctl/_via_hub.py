"""``hmctl room ask ... --via-hub URL``: ask a room through a hub, sealed end to end.

The command connects to a hub as a satellite and lets
:class:`hivemind_rooms.hive.RoomBridgeClient` do the rest: verify the
service attestation (fresh nonce), the seal key, the signed manifest and the
agents, ask with the question sealed to the attested service, and verify the
signed run attestation over the sealed answer. The hubs on the way only relay.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import trio
from hivemind_proto.trio import HiveRefused, HiveUnavailable, SatelliteIdentity, open_hive
from hivemind_rooms.attestation import VerificationPolicy
from hivemind_rooms.hive import BridgeError, BridgeVerificationError, RoomBridgeClient
from hivemind_rooms.links import RoomLink
from rich.console import Console

from ._room_base import RoomOptions
from ._runtime import Runtime
from .client import RoomTarget
from .client.errors import AccessRefused, AttestationInvalid, NetworkFailure, UsageProblem

__all__ = ["ask_via_hub"]

_MAX_RUN_TIMEOUT = 3600


async def _ask(
    link: RoomLink,
    question: str,
    identity: SatelliteIdentity,
    hub_url: str,
    policy: VerificationPolicy,
    payer_key: str,
    budgets: dict[str, int],
    wait_seconds: float,
) -> tuple[Any, Any]:
    async with open_hive(hub_url, identity) as client:
        bridge = RoomBridgeClient(client, policy=policy, timeout=wait_seconds)
        room = await bridge.verify_room(link)
        answer = await bridge.ask(room, question, payer_key=payer_key or None, budgets=budgets)
    return room, answer


def ask_via_hub(
    rt: Runtime, opts: RoomOptions, target: RoomTarget, question: str, o: Mapping[str, Any]
) -> None:
    """Ask through the hub named by ``--via-hub`` and print the verified answer.

    Args:
        rt: the runtime (console, JSON mode).
        opts: the room options (local state with trusted dev roots, trust flags).
        target: the resolved room (it must come from an invite or share link).
        question: the question.
        o: the ``room ask`` options.

    Raises:
        UsageProblem: no room link, or missing hub credentials.
        AttestationInvalid: anything failed verification.
        NetworkFailure: the hub or the room service did not answer.
    """
    link, hub_url = target.link, str(o["via_hub"])
    access_key, password = o.get("access_key") or "", o.get("password") or ""
    budgets = {
        "max_llm_calls": int(o["max_llm_calls"]),
        "max_tokens": int(o["max_tokens"]),
        "timeout_seconds": min(int(o["timeout"]), _MAX_RUN_TIMEOUT),
    }
    dev_roots = frozenset(opts.state.dev_roots())
    if link is None:
        raise UsageProblem("--via-hub needs the room's hmroom:// invite or share link")
    if not access_key or not password:
        raise UsageProblem("--via-hub needs --access-key and --password for the hub")
    identity = SatelliteIdentity(access_key=access_key, password=password, useragent="hmctl")
    policy = VerificationPolicy(allow_dev=opts.allow_dev, dev_roots=dev_roots)
    wait = 3 * float(o["timeout"]) + 120
    args = (link, question, identity, hub_url, policy, target.payer_key, budgets, wait)
    try:
        room, answer = trio.run(_ask, *args)
    except BridgeVerificationError as exc:
        raise AttestationInvalid(str(exc), hint="do not trust this room or answer") from None
    except BridgeError as exc:
        if exc.status in (401, 403):
            raise AccessRefused(exc.status, str(exc)) from None
        raise NetworkFailure(f"asking through {hub_url} failed: {exc}") from None
    except (HiveRefused, HiveUnavailable) as exc:
        raise NetworkFailure(f"asking through {hub_url} failed: {exc}") from None
    data = {
        "room_id": link.room_id,
        "run_id": answer.run_id,
        "status": answer.status,
        "output": answer.output,
        "verified": list(answer.checks),
        "label": room.service.label,
        "via_hub": hub_url,
    }

    def human(c: Console) -> None:
        for check in answer.checks:
            c.print(f"verified: {check}", markup=False, highlight=False)
        c.print(f"run {answer.run_id} ({answer.status}, {room.service.label})", markup=False)
        c.print(answer.output, markup=False, highlight=False)

    rt.emit(data, human)
