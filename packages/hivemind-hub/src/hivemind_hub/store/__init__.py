"""Client databases: the :class:`ClientStore` interface and its backends.

Three backends share one behaviour (see ``_base``): SQLite (the default),
JSON (upstream legacy layout) and Redis (shared between hub processes).
"""

from __future__ import annotations

from ._base import (
    SCHEMA_VERSION,
    BaseClientStore,
    ChangeCallback,
    ChangeKind,
    ClientChange,
    ClientStore,
)
from ._json import JSONClientStore
from ._open import migrate_store, open_store, store_path
from ._redis import RedisClientStore
from ._sqlite import SQLiteClientStore

__all__ = [
    "SCHEMA_VERSION",
    "BaseClientStore",
    "ChangeCallback",
    "ChangeKind",
    "ClientChange",
    "ClientStore",
    "JSONClientStore",
    "RedisClientStore",
    "SQLiteClientStore",
    "migrate_store",
    "open_store",
    "store_path",
]
