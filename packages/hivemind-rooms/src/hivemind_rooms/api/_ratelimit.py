"""A token bucket for unauthenticated routes (self-serve signup)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import final

__all__ = ["TokenBucket"]


@final
class TokenBucket:
    """Allow ``rate`` events per minute with bursts of up to ``rate``.

    Args:
        rate: Events per minute (at least 1).
        clock: Monotonic seconds.
    """

    def __init__(self, rate: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = max(1, rate)
        self._tokens = float(self._rate)
        self._clock = clock
        self._last = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Consume one token; False when the bucket is empty."""
        with self._lock:
            now = self._clock()
            refill = (now - self._last) * self._rate / 60
            self._tokens = min(float(self._rate), self._tokens + refill)
            self._last = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True
