"""JSON client store (``clients.json``), the upstream legacy layout.

Theory of operation
-------------------
The file is one JSON object mapping ``str(client_id)`` to a record. Two
sidecar files sit beside it: ``clients.schema_version`` (upstream; missing
means 1) and ``clients.id_seq`` (ours; the id high-water mark, so deleted ids
are never reused even though deleted records are removed).

Each write replaces the whole file atomically: the new content goes to a
temporary file in the same directory, is flushed to disk, and renamed over the
old one, so a crash leaves either the old or the new file, never half of one.
Read-modify-write blocks hold an exclusive ``flock`` on ``clients.json.lock``
so two processes (hub and CLI) cannot interleave. Reads are served from a
cache refreshed when the file's mtime, size or inode change, which keeps the
per-message access-key lookup cheap.

Migration v1 -> v2 rewrites every record through :meth:`Client.from_dict`
(legacy blacklist keys move into ``metadata``; explicit metadata wins) and
then writes ``2`` into the schema sidecar.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .._errors import InvalidClientError, StoreError
from ..clients import Client
from ._base import SCHEMA_VERSION, BaseClientStore, file_stamp

__all__ = ["JSONClientStore", "atomic_write_text"]


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically (temp file, fsync, rename).

    Args:
        path: Destination file.
        text: New content.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class JSONClientStore(BaseClientStore):
    """Client store in a JSON file.

    Args:
        path: The ``clients.json`` file (created on first write).
    """

    backend = "json"

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._version_path = self.path.with_suffix(".schema_version")
        self._seq_path = self.path.with_suffix(".id_seq")
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._lock = threading.RLock()
        self._records: dict[int, Client] = {}
        self._stamp: tuple[int, int, int] | None = None
        self._dirty = False
        self._in_atomic = False
        self._migrate_pending = False
        with self._atomic():
            if self.schema_version < SCHEMA_VERSION:
                # Loading already converted every record to the v2 shape:
                # writing them back completes the migration.
                self._dirty = bool(self._records)
                self._migrate_pending = True

    @property
    def schema_version(self) -> int:
        """The version in the sidecar file (1 when missing)."""
        try:
            return int(self._version_path.read_text(encoding="utf-8").strip() or "1")
        except FileNotFoundError:
            return 1
        except ValueError as exc:
            raise StoreError(f"{self._version_path}: not a version number") from exc

    # -- file I/O -----------------------------------------------------------------

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _refresh(self) -> None:
        stamp = self._file_stamp()
        if stamp == self._stamp and (stamp is not None or not self._records):
            return
        self._records = self._load() if stamp is not None else {}
        self._stamp = stamp

    def _load(self) -> dict[int, Client]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except ValueError as exc:
            raise StoreError(f"{self.path}: not valid JSON") from exc
        if not isinstance(raw, dict):
            raise StoreError(f"{self.path}: expected a JSON object")
        records: dict[int, Client] = {}
        for key, value in raw.items():
            try:
                client = Client.from_dict(value)
            except InvalidClientError as exc:
                raise StoreError(f"{self.path}: record {key!r}: {exc}") from exc
            records[client.client_id] = client
        return records

    def _flush(self) -> None:
        body = {str(cid): self._records[cid].to_dict() for cid in sorted(self._records)}
        atomic_write_text(self.path, json.dumps(body, indent=2, sort_keys=True) + "\n")
        self._stamp = self._file_stamp()

    @contextmanager
    def _atomic(self) -> Iterator[None]:
        with self._lock:
            if self._in_atomic:
                yield
                return
            with open(self._lock_path, "a") as lock_file:
                fcntl.flock(lock_file, fcntl.LOCK_EX)
                self._in_atomic = True
                try:
                    self._stamp = None
                    self._refresh()
                    self._dirty = False
                    yield
                    if self._dirty:
                        self._flush()
                    if self._migrate_pending:
                        atomic_write_text(self._version_path, f"{SCHEMA_VERSION}\n")
                        self._migrate_pending = False
                except BaseException:
                    self._stamp = None
                    raise
                finally:
                    self._in_atomic = False
                    self._dirty = False
                    fcntl.flock(lock_file, fcntl.LOCK_UN)

    # -- primitives -------------------------------------------------------------

    def _snapshot(self) -> dict[int, Client]:
        with self._lock:
            if not self._in_atomic:
                self._refresh()
            return dict(self._records)

    def _read(self, client_id: int) -> Client | None:
        return self._snapshot().get(client_id)

    def _write(self, client: Client, previous: Client | None) -> None:
        self._records[client.client_id] = client
        self._dirty = True

    def _remove(self, client: Client) -> None:
        self._records.pop(client.client_id, None)
        self._dirty = True

    def _scan(self) -> Iterator[Client]:
        return iter(list(self._snapshot().values()))

    def _candidates(self, access_key: str) -> list[Client]:
        # Every record is a candidate; the caller compares in constant time.
        return list(self._snapshot().values())

    def _high_water(self) -> int:
        try:
            return int(self._seq_path.read_text(encoding="utf-8").strip() or "0")
        except FileNotFoundError:
            return 0
        except ValueError as exc:
            raise StoreError(f"{self._seq_path}: not a number") from exc

    def _set_high_water(self, value: int) -> None:
        atomic_write_text(self._seq_path, f"{value}\n")

    def change_stamp(self) -> Hashable | None:
        """Stats of the records file (writes replace it atomically)."""
        return file_stamp(self.path)

    def close(self) -> None:
        """Nothing to release; present for the common interface."""

    def raw_records(self) -> dict[str, Any]:
        """Return the file's parsed content (for inspection and tests)."""
        if not self.path.exists():
            return {}
        return dict(json.loads(self.path.read_text(encoding="utf-8")))
