"""Exception groups at API boundaries.

trio wraps every exception that leaves a nursery in an ``ExceptionGroup``.
Callers of an async context manager such as ``open_hive`` expect the exception
their own code raised, so at those boundaries a group holding exactly one
exception is replaced by that exception (as trio-websocket does).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


@contextmanager
def single_exception() -> Iterator[None]:
    """Re-raise a group that holds one exception as that exception."""
    try:
        yield
    except BaseExceptionGroup as group:
        leaves = list(_leaves(group))
        if len(leaves) == 1:
            raise leaves[0] from None
        raise
