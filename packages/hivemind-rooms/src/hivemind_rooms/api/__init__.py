"""HTTP routes of the room service, grouped by area."""

from __future__ import annotations

from starlette.routing import BaseRoute

from . import admin, agents, billing, rooms, runs, sharing, submit, system, tenant

__all__ = ["all_routes"]


def all_routes() -> list[BaseRoute]:
    """Every API route, in matching order."""
    return [
        *system.routes,
        *rooms.routes,
        *sharing.routes,
        *submit.routes,
        *agents.routes,
        *runs.routes,
        *tenant.routes,
        *billing.routes,
        *admin.routes,
    ]
