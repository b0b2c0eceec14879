"""The timing loop both sides of the protocol benchmark use (stdlib only).

Imported by ``run.py`` (workspace virtualenv) and ``reference_driver.py``
(interop virtualenv); both run as scripts from this directory, so it is on
their ``sys.path``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

ROUNDS = 5


def measure(
    seal: Callable[[Any], Any], open_: Callable[[Any], Any], message: Any, budget: float
) -> dict[str, float]:
    """Warm up, then alternate seal and open for ``budget`` seconds.

    The budget is cut into rounds and each rate is the best round's, so a
    burst of unrelated load on the machine lowers one round, not the result.

    Args:
        seal: Turns ``message`` into a frame.
        open_: Turns a frame back into a message.
        message: What is sealed every time.
        budget: Seconds for the timed rounds (a tenth more is spent warming up).

    Returns:
        ``{"seal": msgs/s, "open": msgs/s, "n": messages}``.
    """
    clock = time.perf_counter
    warm_until = clock() + budget / 10
    while clock() < warm_until:  # caches, allocator and branch history, untimed
        open_(seal(message))
    best_seal = best_open = 0.0
    total = 0
    for _ in range(ROUNDS):
        n = 0
        sealing = opening = 0.0
        end = clock() + budget / ROUNDS
        while clock() < end:
            t0 = clock()
            frame = seal(message)
            t1 = clock()
            open_(frame)
            t2 = clock()
            sealing += t1 - t0
            opening += t2 - t1
            n += 1
        total += n
        best_seal = max(best_seal, n / sealing)
        best_open = max(best_open, n / opening)
    return {"seal": best_seal, "open": best_open, "n": total}
