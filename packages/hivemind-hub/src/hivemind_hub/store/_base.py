"""The client store interface and the logic every backend shares.

Theory of operation
-------------------
A backend implements a handful of storage primitives (read one record, write
one record, remove one record, scan, find by access key, allocate an id, run a
block atomically). :class:`BaseClientStore` builds the public API on top of
them, so the rules live in one place:

* Deletion removes the record. Ids are still never reused: every backend keeps
  a high-water mark (``id_seq``) that only grows, and a new id is always above
  both the mark and the largest id stored.
* ``get_by_access_key`` never returns a deleted or legacy tombstone record. The
  upstream store wrote deleted rows back as ``api_key="revoked"`` and found
  them again for the literal key ``revoked`` (spec W2); here that key, the
  empty key and every tombstone are refused before and after the lookup, and
  the final match is confirmed with :func:`hmac.compare_digest`.
* Every mutation made through this API fires the callbacks registered with
  :meth:`BaseClientStore.on_change` after it is durable. The hub uses this to
  drop live connections of a deleted or demoted client at once. Changes made
  by another process (the CLI while the hub runs) do not fire callbacks here;
  the hub covers them with :meth:`BaseClientStore.change_stamp`, a cheap
  token (file stats, no query) that differs whenever any process may have
  written: it keeps a record per connection and reads the store again only
  when the stamp moved or is unknown (None: always read again).
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

from .._errors import ClientNotFoundError, DuplicateAccessKeyError, InvalidClientError
from ..clients import REVOKED_ACCESS_KEY, Client

__all__ = [
    "SCHEMA_VERSION",
    "BaseClientStore",
    "ChangeCallback",
    "ChangeKind",
    "ClientChange",
    "ClientStore",
    "file_stamp",
]

#: The record layout version every backend migrates to (spec §6.4).
SCHEMA_VERSION: Final = 2

_log = logging.getLogger(__name__)


#: A file written less than this long ago gives no stamp: filesystem
#: timestamps are coarse (kernel ticks, or whole seconds on some file
#: systems), so two writes that close together may leave the same mtime.
RACY_WINDOW_NS: Final = 2_000_000_000


def file_stamp(*paths: Path) -> tuple[tuple[int, int, int] | None, ...] | None:
    """Stat ``paths`` into a change stamp (None while any was written just now).

    A missing file stamps as None; a file modified within ``RACY_WINDOW_NS``
    makes the whole stamp None, so it is never trusted while a later write
    could still reuse its mtime.
    """
    now = time.time_ns()
    stamps: list[tuple[int, int, int] | None] = []
    for path in paths:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            stamps.append(None)
            continue
        except OSError:
            return None
        if now - st.st_mtime_ns < RACY_WINDOW_NS:
            return None
        stamps.append((st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(stamps)


class ChangeKind(Enum):
    """What a mutation did to a record."""

    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"


@dataclass(frozen=True)
class ClientChange:
    """One committed mutation, passed to change callbacks.

    Attributes:
        kind: Created, updated or deleted.
        client_id: The record's id.
        before: The record before the change (None when created).
        after: The record after the change (None when deleted).
    """

    kind: ChangeKind
    client_id: int
    before: Client | None
    after: Client | None

    @property
    def revokes_access(self) -> bool:
        """True if live connections of this client must be closed.

        That is the case when the record is deleted, its access key or
        password changes, or its admin flag is taken away.
        """
        if self.kind is ChangeKind.DELETED:
            return True
        if self.before is None or self.after is None:
            return False
        b, a = self.before, self.after
        return (
            b.api_key != a.api_key
            or b.password != a.password
            or b.crypto_key != a.crypto_key
            or (b.is_admin and not a.is_admin)
        )


ChangeCallback = Callable[[ClientChange], None]


@runtime_checkable
class ClientStore(Protocol):
    """What the hub and the CLI need from a client database."""

    backend: str

    def get(self, client_id: int) -> Client | None:
        """Return the record with this id, or None."""
        ...

    def get_by_access_key(self, access_key: str) -> Client | None:
        """Return the live record with this access key, or None."""
        ...

    def list_clients(self) -> list[Client]:
        """Return every stored record ordered by id."""
        ...

    def require(self, client_id: int) -> Client:
        """Return the record with this id or raise ClientNotFoundError."""
        ...

    def create(self, **fields: Any) -> Client:
        """Store a new record with a fresh id."""
        ...

    def touch(self, client_id: int, when: float) -> None:
        """Record the last inbound message time (no change callback)."""
        ...

    def put(self, client: Client) -> None:
        """Insert or replace a record under its own id."""
        ...

    def update(self, client_id: int, **changes: Any) -> Client:
        """Change fields of an existing record."""
        ...

    def delete(self, client_id: int) -> Client:
        """Remove a record; its id is never reused."""
        ...

    def on_change(self, callback: ChangeCallback) -> Callable[[], None]:
        """Register a mutation callback; returns a function unregistering it."""
        ...

    def close(self) -> None:
        """Release the connection or file handles."""
        ...


class BaseClientStore(ABC):
    """Shared implementation of :class:`ClientStore` over storage primitives."""

    backend: str = "abstract"

    def __init__(self) -> None:
        self._callbacks: list[ChangeCallback] = []
        self._callbacks_lock = threading.Lock()

    # -- primitives each backend provides -------------------------------------

    @abstractmethod
    def _atomic(self) -> AbstractContextManager[None]:
        """Run a read-modify-write block atomically (transaction or lock)."""

    @abstractmethod
    def _read(self, client_id: int) -> Client | None:
        """Read one record."""

    @abstractmethod
    def _write(self, client: Client, previous: Client | None) -> None:
        """Insert or replace one record (``previous`` is the stored version)."""

    @abstractmethod
    def _remove(self, client: Client) -> None:
        """Remove one record."""

    @abstractmethod
    def _scan(self) -> Iterator[Client]:
        """Yield every stored record."""

    @abstractmethod
    def _candidates(self, access_key: str) -> list[Client]:
        """Return records whose access key may equal ``access_key``."""

    @abstractmethod
    def _high_water(self) -> int:
        """Return the largest id ever handed out (0 if none)."""

    @abstractmethod
    def _set_high_water(self, value: int) -> None:
        """Raise the id high-water mark to ``value`` (never lowers it)."""

    @abstractmethod
    def close(self) -> None:
        """Release resources."""

    # -- reads ------------------------------------------------------------------

    def change_stamp(self) -> Hashable | None:
        """A cheap token that changes whenever any process writes the store.

        Equal stamps taken before two reads guarantee the second read would
        return what the first did. None means "unknown": the caller must read
        again. Backends without a cheap check (Redis) always return None.
        """
        return None

    def get(self, client_id: int) -> Client | None:
        """Return the record with this id, or None.

        Args:
            client_id: The numeric id.
        """
        return self._read(client_id)

    def require(self, client_id: int) -> Client:
        """Return the record with this id.

        Raises:
            ClientNotFoundError: No record has this id.
        """
        client = self._read(client_id)
        if client is None:
            raise ClientNotFoundError(f"no client with id {client_id}")
        return client

    def get_by_access_key(self, access_key: str) -> Client | None:
        """Return the live record whose access key equals ``access_key``.

        Deleted records and legacy tombstones never match, whatever the key.
        The final comparison is constant-time.

        Args:
            access_key: The key presented by a connecting client.
        """
        if not isinstance(access_key, str) or access_key in ("", REVOKED_ACCESS_KEY):
            return None
        found = None
        for client in self._candidates(access_key):
            same = hmac.compare_digest(client.api_key.encode(), access_key.encode())
            if same and not client.is_revoked and found is None:
                found = client
        return found

    def list_clients(self) -> list[Client]:
        """Return every stored record (legacy tombstones included), ordered by id."""
        return sorted(self._scan(), key=lambda c: c.client_id)

    def __iter__(self) -> Iterator[Client]:
        return iter(self.list_clients())

    def __len__(self) -> int:
        return sum(1 for _ in self._scan())

    @property
    def id_high_water(self) -> int:
        """The largest id ever allocated by this store."""
        return max(self._high_water(), max((c.client_id for c in self._scan()), default=0))

    # -- writes -----------------------------------------------------------------

    def create(self, **fields: Any) -> Client:
        """Store a new record with a fresh, never-used id.

        Args:
            **fields: Any :class:`~hivemind_hub.clients.Client` field except
                ``client_id``; ``api_key`` is required.

        Returns:
            The stored record.

        Raises:
            DuplicateAccessKeyError: A live record already uses the access key.
            InvalidClientError: A field is invalid.
        """
        if "client_id" in fields:
            raise InvalidClientError("client_id is assigned by the store")
        api_key = fields.get("api_key")
        if not isinstance(api_key, str) or api_key in ("", REVOKED_ACCESS_KEY):
            raise InvalidClientError("api_key: expected a non-empty string other than 'revoked'")
        with self._atomic():
            if self.get_by_access_key(api_key) is not None:
                raise DuplicateAccessKeyError("another client already uses this access key")
            new_id = self._allocate_id()
            client = Client(client_id=new_id, **fields)
            self._write(client, None)
        self._notify(ClientChange(ChangeKind.CREATED, client.client_id, None, client))
        return client

    def _allocate_id(self) -> int:
        new_id = self.id_high_water + 1
        self._set_high_water(new_id)
        return new_id

    def put(self, client: Client) -> None:
        """Insert or replace a record under its own id (used by migrations).

        Raises:
            DuplicateAccessKeyError: A different live record uses the same key.
        """
        with self._atomic():
            previous = self._read(client.client_id)
            other = self.get_by_access_key(client.api_key)
            if other is not None and other.client_id != client.client_id:
                raise DuplicateAccessKeyError("another client already uses this access key")
            self._write(client, previous)
            if client.client_id > self._high_water():
                self._set_high_water(client.client_id)
        kind = ChangeKind.CREATED if previous is None else ChangeKind.UPDATED
        self._notify(ClientChange(kind, client.client_id, previous, client))

    def update(self, client_id: int, **changes: Any) -> Client:
        """Change fields of an existing record.

        Args:
            client_id: The record to change.
            **changes: Field names and new values.

        Returns:
            The stored record after the change.

        Raises:
            ClientNotFoundError: No record has this id.
            InvalidClientError: A field name or value is invalid.
            DuplicateAccessKeyError: The new access key is taken.
        """
        if "client_id" in changes:
            raise InvalidClientError("client_id cannot be changed")
        with self._atomic():
            previous = self.require(client_id)
            updated = previous.with_changes(**changes)
            new_key = changes.get("api_key")
            if new_key is not None:
                if new_key in ("", REVOKED_ACCESS_KEY):
                    raise InvalidClientError("api_key: this value is reserved")
                other = self.get_by_access_key(new_key)
                if other is not None and other.client_id != client_id:
                    raise DuplicateAccessKeyError("another client already uses this access key")
            if updated == previous:
                return previous
            self._write(updated, previous)
        self._notify(ClientChange(ChangeKind.UPDATED, client_id, previous, updated))
        return updated

    def touch(self, client_id: int, when: float) -> None:
        """Record the time of the client's last inbound message.

        Unlike :meth:`update` this fires no change callback: it is bookkeeping
        the hub writes often (debounced by ``last_seen_update_interval``), and
        it never changes what the client may do. A missing client is ignored.

        Args:
            client_id: The client.
            when: Unix time of the message.
        """
        with self._atomic():
            previous = self._read(client_id)
            if previous is not None and previous.last_seen != when:
                self._write(previous.with_changes(last_seen=when), previous)

    def delete(self, client_id: int) -> Client:
        """Remove a record. Its id stays allocated and is never reused.

        Returns:
            The record as it was before deletion.

        Raises:
            ClientNotFoundError: No record has this id.
        """
        with self._atomic():
            previous = self.require(client_id)
            if client_id > self._high_water():
                self._set_high_water(client_id)
            self._remove(previous)
        self._notify(ClientChange(ChangeKind.DELETED, client_id, previous, None))
        return previous

    def reserve_ids(self, high_water: int) -> None:
        """Raise the id high-water mark (migrations carry it across stores)."""
        with self._atomic():
            if high_water > self._high_water():
                self._set_high_water(high_water)

    # -- change notification -------------------------------------------------

    def on_change(self, callback: ChangeCallback) -> Callable[[], None]:
        """Register ``callback`` for every mutation made through this object.

        Callbacks run synchronously in the mutating thread, after the change
        is stored. An exception in a callback is logged and does not undo the
        change or stop other callbacks.

        Returns:
            A function that unregisters the callback.
        """
        with self._callbacks_lock:
            self._callbacks.append(callback)

        def unsubscribe() -> None:
            with self._callbacks_lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return unsubscribe

    def _notify(self, change: ClientChange) -> None:
        with self._callbacks_lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(change)
            except Exception:
                _log.exception("client change callback failed (client %d)", change.client_id)

    def __enter__(self) -> BaseClientStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
