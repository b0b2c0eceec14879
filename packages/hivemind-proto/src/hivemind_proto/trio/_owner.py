"""One owner for a sans-IO ``Connection`` whose costly steps run in a thread.

Theory of operation: handshake steps cost real CPU (PBKDF2, argon2id), so
``receive_frame`` runs them in a worker thread. A ``Connection`` is not
thread-safe, and a re-handshake switches keys part-way through that call: a
message sealed on the trio thread meanwhile would carry the old key yet leave
after the new HANDSHAKE response, and the peer could not open it. So while a
worker thread holds the connection, messages to send are held here (in order,
bounded) and handed to the connection right after the thread returns, behind
whatever the handshake step queued; ``data_to_send`` hands out nothing until
then. Everything else happens on the trio thread, so no lock is needed.
"""

from __future__ import annotations

from typing import Final, final

import trio

from .._connection import Connection
from .._envelope import HiveMessage
from .._events import Event
from .._state import State
from ._transport import Frame

#: Worker threads shared by every connection, so a flood of handshakes
#: cannot stall all the others.
HANDSHAKE_THREADS: Final = trio.CapacityLimiter(4)

_CPU_HEAVY_STATES: Final = frozenset(
    {
        State.OFFERED,
        State.AWAITING_RESPONSE,
        State.NOISE_HANDSHAKE,
        State.REKEYING,
        State.AWAITING_OFFER,
    }
)


@final
class ConnectionOwner:
    """Serialises trio-side use of ``conn`` against its worker-thread steps."""

    __slots__ = ("_held", "_hold_limit", "_idle", "conn")

    def __init__(self, conn: Connection, hold_limit: int) -> None:
        self.conn = conn
        self._hold_limit = hold_limit
        self._held: list[HiveMessage] | None = None
        self._idle: trio.Event | None = None

    @property
    def busy(self) -> bool:
        """A worker thread holds the connection."""
        return self._held is not None

    def is_costly(self, frame: Frame) -> bool:
        """Whether processing ``frame`` may derive keys (and so belongs in a thread)."""
        return self.conn.state in _CPU_HEAVY_STATES or (
            isinstance(frame, str) and "envelope" in frame
        )

    async def receive_frame(self, frame: Frame) -> list[Event]:
        """Feed ``frame`` to the connection; costly steps run in a worker thread.

        Raises:
            RemoteProtocolError: as ``Connection.receive_frame``; the held
                messages are dropped with the connection.
        """
        if not self.is_costly(frame):
            return self.conn.receive_frame(frame)
        self._held, self._idle = [], trio.Event()
        try:
            events = await trio.to_thread.run_sync(
                self.conn.receive_frame, frame, limiter=HANDSHAKE_THREADS
            )
            held = self._held
        finally:
            self._held, idle = None, self._idle
            self._idle = None
            idle.set()
        for message in held:
            self.conn.send(message)
        return events

    def send(self, message: HiveMessage) -> bool:
        """Seal ``message`` now, or hold it while a thread has the connection.

        Returns:
            False when the hold is full (the caller's slow-consumer policy
            applies); True otherwise.

        Raises:
            LocalProtocolError: as ``Connection.send`` (when not held).
        """
        if self._held is None:
            self.conn.send(message)
            return True
        if len(self._held) >= self._hold_limit:
            return False
        self._held.append(message)
        return True

    async def wait_idle(self) -> None:
        """Return once no worker thread holds the connection."""
        while self._idle is not None:
            await self._idle.wait()

    def data_to_send(self) -> list[Frame]:
        """The frames ready for the peer (none while a thread holds the connection)."""
        return [] if self._held is not None else self.conn.data_to_send()
