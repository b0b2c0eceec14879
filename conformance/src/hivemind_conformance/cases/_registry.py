"""The two case registries (hub mode and client mode)."""

from __future__ import annotations

from .._case import make_registry

HUB_CASES, hub_case = make_registry()
CLIENT_CASES, client_case = make_registry()
