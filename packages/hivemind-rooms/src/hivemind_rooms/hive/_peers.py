"""The hubs allowed to link to the room service, and what each may ask.

A small SQLite table in the service's data directory (``hive-peers.db``,
mode 0600). A peer hub connects with an access key and proves the password
through the Noise handshake (profile N only; the password is the PSK input,
which is why it is stored). ``allowed_types`` lists the ``hivemind.room.*``
message types the peer may relay. Nothing here is ever logged.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import final

__all__ = ["PEERS_FILE", "ROOM_TYPES", "PeerHub", "PeerStore"]

PEERS_FILE = "hive-peers.db"
#: Every request type a peer hub may relay (the default grant).
ROOM_TYPES = ("hivemind.room.attestation", "hivemind.room.inspect", "hivemind.room.ask")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS peer_hubs (
    name TEXT PRIMARY KEY,
    access_key TEXT NOT NULL UNIQUE,
    password TEXT NOT NULL,
    allowed_types TEXT NOT NULL,
    created_at INTEGER NOT NULL
)
"""


@final
@dataclass(frozen=True)
class PeerHub:
    """One peer hub's credential (secrets hidden from ``repr``)."""

    name: str
    access_key: str = field(repr=False)
    password: str = field(repr=False)
    allowed_types: tuple[str, ...]
    created_at: int


@final
class PeerStore:
    """Peer hub credentials in ``<data_dir>/hive-peers.db`` (thread-safe).

    Args:
        data_dir: the room service's data directory.
    """

    def __init__(self, data_dir: Path) -> None:
        path = Path(data_dir) / PEERS_FILE
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute(_SCHEMA)

    def add(
        self,
        name: str,
        *,
        access_key: str | None = None,
        password: str | None = None,
        allowed_types: tuple[str, ...] = ROOM_TYPES,
    ) -> PeerHub:
        """Register a peer hub (fresh random secrets unless given).

        Raises:
            ValueError: an unknown type, an empty name, or a name or key in use.
        """
        if not name or set(allowed_types) - set(ROOM_TYPES):
            raise ValueError("a peer needs a name and only hivemind.room.* request types")
        peer = PeerHub(
            name=name,
            access_key=access_key or secrets.token_hex(16),
            password=password or secrets.token_urlsafe(24),
            allowed_types=tuple(allowed_types),
            created_at=int(time.time()),
        )
        row = (peer.name, peer.access_key, peer.password, json.dumps(list(peer.allowed_types)))
        try:
            with self._lock:
                self._db.execute(
                    "INSERT INTO peer_hubs VALUES (?, ?, ?, ?, ?)", (*row, peer.created_at)
                )
        except sqlite3.IntegrityError:
            raise ValueError("that peer name or access key is already registered") from None
        return peer

    def remove(self, name: str) -> bool:
        """Delete a peer hub; its live link fails on its next request."""
        with self._lock:
            return self._db.execute("DELETE FROM peer_hubs WHERE name = ?", (name,)).rowcount > 0

    def list(self) -> list[PeerHub]:
        """Every registered peer hub."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM peer_hubs ORDER BY name").fetchall()
        return [_peer(r) for r in rows]

    def by_access_key(self, access_key: str) -> PeerHub | None:
        """The peer with this access key (constant-time final comparison)."""
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM peer_hubs WHERE access_key = ?", (access_key,)
            ).fetchone()
        if row is None or not hmac.compare_digest(row[1].encode(), access_key.encode()):
            return None
        return _peer(row)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()


def _peer(row: tuple[str, str, str, str, int]) -> PeerHub:
    return PeerHub(row[0], row[1], row[2], tuple(json.loads(row[3])), int(row[4]))
