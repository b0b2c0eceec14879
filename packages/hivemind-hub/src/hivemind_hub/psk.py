"""A bounded, thread-safe cache of Noise PSKs.

Theory of operation
-------------------
The Noise PSK of a client is argon2id over its password, salted with the
hub's node id: about 170 ms of CPU and 64 MiB of memory. Deriving it afresh
on every handshake let anyone holding only an access key make the hub do that
work once per connection attempt. ``PskCache`` derives it once per
``(node id, password)`` and keeps the result in a bounded LRU.

The PSK is a pure function of the password and the node id, so the cache is
keyed by an HMAC of the two under a random per-process key: the table never
holds a password, and a changed password (made here or by another process)
simply misses and derives afresh. Changes seen through the store's
``on_change`` drop the old entry at once (``forget``).

``derive`` is called by the protocol ``Connection`` inside a worker thread
that already holds a slot of the handshake limiter, so the slow work stays
behind that limiter. Concurrent first handshakes of one client share one
derivation: each key has its own lock and the first holder computes while
the others wait for its result.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
from collections import OrderedDict
from collections.abc import Callable

from hivemind_proto import derive_psk

__all__ = ["PskCache"]

#: Entries kept; each costs well under a kilobyte.
DEFAULT_MAX_ENTRIES = 4096


class _Entry:
    __slots__ = ("lock", "psk")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.psk: bytes | None = None


class PskCache:
    """Derive Noise PSKs once and remember them.

    Args:
        deriver: ``(password, node_id) -> 32 bytes`` (argon2id by default).
        max_entries: LRU bound.
    """

    def __init__(
        self,
        deriver: Callable[[str, str], bytes] = derive_psk,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        self._deriver = deriver
        self._max = max_entries
        self._secret = os.urandom(32)
        self._lock = threading.Lock()
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()

    def __repr__(self) -> str:
        return f"PskCache(entries={len(self)}, max_entries={self._max})"

    def __len__(self) -> int:
        with self._lock:
            return sum(1 for e in self._entries.values() if e.psk is not None)

    def _key(self, password: str, node_id: str) -> bytes:
        material = node_id.encode() + b"\x00" + password.encode()
        return hmac.new(self._secret, material, hashlib.sha256).digest()

    def _entry(self, key: bytes) -> _Entry:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry()
                while len(self._entries) > self._max:
                    self._entries.popitem(last=False)
            else:
                self._entries.move_to_end(key)
            return entry

    def derive(self, password: str, node_id: str) -> bytes:
        """Return the PSK of ``password`` for ``node_id``, deriving it at most once.

        Blocking (argon2id on a miss): call it from a worker thread.
        """
        entry = self._entry(self._key(password, node_id))
        with entry.lock:
            if entry.psk is None:
                entry.psk = self._deriver(password, node_id)
            return entry.psk

    def forget(self, password: str | None, node_id: str) -> None:
        """Drop the cached PSK of ``password`` (no-op when absent)."""
        if not password:
            return
        key = self._key(password, node_id)
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        """Drop every cached PSK."""
        with self._lock:
            self._entries.clear()
