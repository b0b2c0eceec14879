"""Opening the configured store and moving records between stores."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._errors import ConfigError, StoreError
from ..config import BACKEND_MODULES, DatabaseConfig, data_dir
from ._base import BaseClientStore
from ._json import JSONClientStore
from ._redis import RedisClientStore
from ._sqlite import SQLiteClientStore

__all__ = ["migrate_store", "open_store", "store_path"]


def store_path(backend: str, options: Mapping[str, Any], base: Path | None = None) -> Path:
    """Return the file of a JSON or SQLite store.

    The upstream ``name``/``subfolder`` options are honoured: the file is
    ``$XDG_DATA_HOME/<subfolder>/<name>.json`` (or ``.db``). An explicit
    ``path`` option wins.

    Args:
        backend: ``json`` or ``sqlite``.
        options: The database option block.
        base: The data root (defaults to the parent of :func:`data_dir`).
    """
    if options.get("path"):
        return Path(str(options["path"])).expanduser()
    root = base if base is not None else data_dir().parent
    name = str(options.get("name") or "clients")
    subfolder = str(options.get("subfolder") or "hivemind-core")
    suffix = ".json" if backend == "json" else ".db"
    return root / subfolder / f"{name}{suffix}"


def open_store(
    database: DatabaseConfig | str, options: Mapping[str, Any] | None = None
) -> BaseClientStore:
    """Open a client store, running its v1 -> v2 migration if needed.

    Args:
        database: The configured database, or a short backend name
            (``json``, ``sqlite``, ``redis``).
        options: Backend options when ``database`` is a name (defaults to the
            upstream ``{"name": "clients", "subfolder": "hivemind-core"}``).

    Returns:
        The open store; close it with ``close()`` or use it as a context manager.

    Raises:
        ConfigError: The backend name is unknown.
        StoreError: The store cannot be opened.
    """
    if isinstance(database, DatabaseConfig):
        backend, opts = database.backend, dict(database.options)
    else:
        if database not in BACKEND_MODULES:
            names = ", ".join(BACKEND_MODULES)
            raise ConfigError(f"database: unknown backend {database!r} (use one of {names})")
        backend, opts = database, dict(options or {})
    if backend == "redis":
        return RedisClientStore(opts)
    if opts.get("password"):
        # Upstream can encrypt these files (encrypted JSON, SQLCipher); we do
        # not read them, and refuse rather than treat them as empty.
        raise StoreError(
            f"database.{BACKEND_MODULES[backend]}.password: encrypted {backend} client "
            "databases are not supported; decrypt it or migrate to another backend"
        )
    if backend == "json":
        return JSONClientStore(store_path("json", opts))
    return SQLiteClientStore(store_path("sqlite", opts))


def migrate_store(src: BaseClientStore, dst: BaseClientStore) -> int:
    """Copy every record of ``src`` into ``dst`` verbatim; ``src`` is untouched.

    Records keep their ids, credentials and metadata; the id high-water mark
    is carried over so ids deleted in the source are not reused by the
    target. Records already in ``dst`` with the same id are replaced.

    Args:
        src: The store to read.
        dst: The store to write.

    Returns:
        The number of records copied.

    Raises:
        DuplicateAccessKeyError: ``dst`` holds a different record with one
            of the source access keys.
        StoreError: Either store failed.
    """
    clients = src.list_clients()
    for client in clients:
        dst.put(client)
    dst.reserve_ids(src.id_high_water)
    return len(clients)
