"""Embedded SQLite storage: one control database and one database per tenant.

:class:`Storage` owns the open files of a data directory. The control store
holds identities and money; each tenant store holds that tenant's agents,
rooms and runs, so deleting a tenant is closing and deleting one file.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import final

from ._control import ControlStore, LedgerEntry, RedeemRefused
from ._db import SqliteFile, StorageError
from ._interface import ControlStoreProtocol, TenantStoreProtocol
from ._tenant import TenantStore

__all__ = [
    "ControlStore",
    "ControlStoreProtocol",
    "LedgerEntry",
    "RedeemRefused",
    "SqliteFile",
    "Storage",
    "StorageError",
    "TenantStore",
    "TenantStoreProtocol",
]

_TENANT_ID = re.compile(r"t_[0-9a-f]{12}")


@final
class Storage:
    """The databases under one data directory.

    Args:
        data_dir: Directory for ``control.sqlite3`` and ``tenants/``.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.control = ControlStore(data_dir / "control.sqlite3")
        self._tenants: dict[str, TenantStore] = {}
        self._lock = threading.Lock()

    def tenant_path(self, tenant_id: str) -> Path:
        """Return the database path of a tenant.

        Raises:
            StorageError: The id is not a well-formed tenant id.
        """
        if not _TENANT_ID.fullmatch(tenant_id):
            raise StorageError("malformed tenant id")
        return self.data_dir / "tenants" / f"{tenant_id}.sqlite3"

    def tenant(self, tenant_id: str) -> TenantStore:
        """Return the (lazily opened and migrated) store of a tenant."""
        with self._lock:
            store = self._tenants.get(tenant_id)
            if store is None:
                store = TenantStore(self.tenant_path(tenant_id))
                self._tenants[tenant_id] = store
            return store

    def drop_tenant(self, tenant_id: str) -> None:
        """Close and delete a tenant's database files."""
        path = self.tenant_path(tenant_id)
        with self._lock:
            store = self._tenants.pop(tenant_id, None)
            if store is not None:
                store.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)

    def close(self) -> None:
        """Close every open file."""
        with self._lock:
            for store in self._tenants.values():
                store.close()
            self._tenants.clear()
        self.control.close()
