"""Runtime event logs and RTMR3 replay (dstack's format, used by both providers).

Theory of operation: dstack extends RTMR3 with one SHA-384 digest per runtime
event (app id, compose hash, instance id, key provider, ...). A digest is
``SHA-384(event_type as 4 bytes little-endian || ":" || name || ":" ||
payload)``; the register starts at 48 zero bytes and each event folds in as
``RTMR3 = SHA-384(RTMR3 || digest)``. A verifier recomputes every digest from
its payload, replays the chain, compares the result with the RTMR3 the quote
carries, and only then trusts the payloads, such as the ``compose-hash`` event.
The development provider writes the same kind of log, so the replay code runs
in development too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from typing import Any

from hivemind_rooms.attestation._types import AttestationRefused

__all__ = [
    "RUNTIME_EVENT_TYPE",
    "event_digest",
    "make_event",
    "replay_rtmr3",
    "verified_event_payloads",
]

RUNTIME_EVENT_TYPE = 0x08000001
_MAX_EVENTS = 4096


def event_digest(event_type: int, name: str, payload: bytes) -> bytes:
    """The 48-byte SHA-384 digest dstack extends into RTMR3 for one event."""
    data = event_type.to_bytes(4, "little") + b":" + name.encode("utf-8") + b":" + payload
    return hashlib.sha384(data).digest()


def make_event(name: str, payload: bytes) -> dict[str, Any]:
    """One RTMR3 event-log entry in dstack's JSON shape."""
    return {
        "imr": 3,
        "event_type": RUNTIME_EVENT_TYPE,
        "digest": event_digest(RUNTIME_EVENT_TYPE, name, payload).hex(),
        "event": name,
        "event_payload": payload.hex(),
    }


def replay_rtmr3(events: Iterable[Mapping[str, Any]]) -> bytes:
    """Fold the digests of the IMR-3 events into an RTMR3 value."""
    rtmr = bytes(48)
    for event in events:
        if event.get("imr") == 3:
            rtmr = hashlib.sha384(rtmr + bytes.fromhex(event["digest"])).digest()
    return rtmr


def verified_event_payloads(event_log: str, rtmr3_hex: str) -> dict[str, bytes]:
    """Check an event log against a quoted RTMR3 and return the RTMR3 payloads.

    Every runtime event's digest must match its payload, and the replay must
    equal ``rtmr3_hex``. If a name occurs more than once the last one wins
    (the register includes all of them anyway).

    Raises:
        AttestationRefused: malformed log, digest mismatch or replay mismatch.
    """
    try:
        events = json.loads(event_log)
        if not isinstance(events, list) or len(events) > _MAX_EVENTS:
            raise AttestationRefused("event log malformed")
        imr3 = [e for e in events if isinstance(e, dict) and e.get("imr") == 3]
        payloads: dict[str, bytes] = {}
        for e in imr3:
            payload = bytes.fromhex(e.get("event_payload", ""))
            if e.get("event_type") == RUNTIME_EVENT_TYPE:
                expected = event_digest(RUNTIME_EVENT_TYPE, e["event"], payload)
                if not hmac.compare_digest(expected, bytes.fromhex(e["digest"])):
                    raise AttestationRefused("event log digest does not match its payload")
                payloads[e["event"]] = payload
        replayed = replay_rtmr3(imr3)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise AttestationRefused("event log malformed") from exc
    if not hmac.compare_digest(replayed.hex(), rtmr3_hex.lower()):
        raise AttestationRefused("event log does not replay to the quoted RTMR3")
    return payloads
