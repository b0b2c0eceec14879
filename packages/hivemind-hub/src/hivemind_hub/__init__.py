"""HiveMind hub: configuration, client database and admission layer.

Public API:

* :mod:`hivemind_hub.config`: ``server.json`` loading and validation.
* :class:`Client`: one credential and its grants.
* :mod:`hivemind_hub.store`: ``ClientStore`` with SQLite, JSON and Redis backends,
  ``open_store`` and ``migrate_store``.
* :mod:`hivemind_hub.policy`: the admission chain and ``hive.policy.denied``.
* :func:`prepare_injection`: the agent-bus context rewrite.
* :mod:`hivemind_hub.routing`: the pure routing core (``Router``).
* :mod:`hivemind_hub.agents`, :mod:`hivemind_hub.binary`: agent protocols and
  the binary hook.
* :mod:`hivemind_hub.serve`: ``serve_hub`` / ``run_hub`` (imported on demand,
  it pulls in the network stack).
"""

from __future__ import annotations

from ._errors import (
    ClientNotFoundError,
    ConfigError,
    DuplicateAccessKeyError,
    HubError,
    InvalidClientError,
    StoreError,
)
from .clients import Client
from .config import HubConfig, load_config
from .injection import prepare_injection
from .store import ClientStore, migrate_store, open_store

__all__ = [
    "Client",
    "ClientNotFoundError",
    "ClientStore",
    "ConfigError",
    "DuplicateAccessKeyError",
    "HubConfig",
    "HubError",
    "InvalidClientError",
    "StoreError",
    "load_config",
    "migrate_store",
    "open_store",
    "prepare_injection",
]
