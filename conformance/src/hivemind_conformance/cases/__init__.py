"""Every conformance case, one module per docs/spec section.

Importing this package registers the cases; ``HUB_CASES`` and
``CLIENT_CASES`` list them in a stable order (by id).
"""

from __future__ import annotations

import re

from . import (  # noqa: F401 (imported to register their cases)
    c01_transport,
    c03_handshake,
    c04_framing,
    c07_behaviour,
    c11_noise,
    h01_transport,
    h03_handshake,
    h04_framing,
    h07_routing,
    h11_noise,
)
from ._registry import CLIENT_CASES, HUB_CASES


def _natural(case_id: str) -> list[int | str]:
    """Sort ``hub/3.11/...`` after ``hub/3.9/...``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", case_id)]


HUB_CASES.sort(key=lambda c: _natural(c.id))
CLIENT_CASES.sort(key=lambda c: _natural(c.id))

__all__ = ["CLIENT_CASES", "HUB_CASES"]
