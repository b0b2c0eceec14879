"""Helpers for testing code that speaks the protocol, with no network.

``ConnectionPair`` joins a hub ``Connection`` and a satellite ``Connection``
in memory: ``pump()`` moves queued frames both ways until both are quiet and
records every frame and event, so tests can assert exact sequences, tamper
with frames in flight, or replay them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, final

from ._connection import Connection
from ._events import Event
from ._record import Frame
from ._settings import HubSettings, NoiseIdentity, SatelliteSettings
from ._state import Role

TEST_PASSWORD: Final = "test-password-for-pairs"
TEST_NODE_ID: Final = "hub-test-node"
TEST_PSK: Final = bytes(range(32))


def hub_hello(node_id: str = TEST_NODE_ID) -> dict[str, Any]:
    """A hub HELLO payload for tests."""
    return {"pubkey": None, "peer": "TestSatellite::1::test::default", "node_id": node_id}


def satellite_hello(session_id: str = "test-session", site_id: str = "test-site") -> dict[str, Any]:
    """A satellite HELLO payload for tests."""
    return {
        "pubkey": None,
        "session": {"session_id": session_id, "site_id": site_id},
        "site_id": site_id,
    }


@final
@dataclass(slots=True)
class Transcript:
    """Everything that crossed a pair: ``(sender role, frame)`` and ``(receiver role, event)``."""

    frames: list[tuple[Role, Frame]] = field(default_factory=list)
    events: list[tuple[Role, Event]] = field(default_factory=list)

    def events_of(self, role: Role) -> list[Event]:
        """Events the connection of ``role`` produced."""
        return [event for who, event in self.events if who is role]


@final
class ConnectionPair:
    """A hub and a satellite connection wired together in memory.

    Args:
        hub: the hub's settings (defaults: the test password, legacy only).
        satellite: the satellite's settings (defaults to match ``hub``).
        rng: randomness for both sides.
        psk_deriver: replaces argon2id (slow) in tests that use Noise.
    """

    def __init__(
        self,
        rng: Callable[[int], bytes],
        hub: HubSettings | None = None,
        satellite: SatelliteSettings | None = None,
        psk_deriver: Callable[[str, str], bytes] = lambda password, node_id: TEST_PSK,
    ) -> None:
        self.hub = Connection(
            Role.HUB,
            hub or HubSettings(hello=hub_hello(), password=TEST_PASSWORD),
            rng=rng,
            psk_deriver=psk_deriver,
        )
        self.satellite = Connection(
            Role.SATELLITE,
            satellite or SatelliteSettings(password=TEST_PASSWORD, hello=satellite_hello()),
            rng=rng,
            psk_deriver=psk_deriver,
        )
        self.transcript = Transcript()

    @classmethod
    def noise(
        cls,
        rng: Callable[[int], bytes],
        hub_identity: NoiseIdentity,
        satellite_identity: NoiseIdentity,
        **hub_options: Any,
    ) -> ConnectionPair:
        """A pair that agrees keys with Noise."""
        hub = HubSettings(
            hello=hub_hello(), password=TEST_PASSWORD, noise=hub_identity, **hub_options
        )
        sat = SatelliteSettings(
            password=TEST_PASSWORD,
            hello=satellite_hello(),
            noise=satellite_identity,
            require_noise=True,
        )
        return cls(rng, hub, sat)

    def handshake(self) -> Transcript:
        """Start the hub and pump until both sides are quiet."""
        self.hub.start()
        return self.pump()

    def pump(self, max_rounds: int = 16) -> Transcript:
        """Deliver queued frames both ways until nothing is left to deliver."""
        for _ in range(max_rounds):
            moved = self._deliver(self.hub, self.satellite) | self._deliver(
                self.satellite, self.hub
            )
            if not moved:
                return self.transcript
        raise AssertionError("the pair kept talking for too many rounds")

    def _deliver(self, sender: Connection, receiver: Connection) -> bool:
        frames = sender.data_to_send()
        for frame in frames:
            self.transcript.frames.append((sender.role, frame))
            for event in receiver.receive_frame(frame):
                self.transcript.events.append((receiver.role, event))
        return bool(frames)


def settings_with(base: Mapping[str, Any], **changes: Any) -> dict[str, Any]:
    """Copy a payload mapping with ``changes`` applied (for tampering tests)."""
    return {**base, **changes}
