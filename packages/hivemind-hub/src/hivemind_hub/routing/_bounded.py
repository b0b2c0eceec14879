"""Small bounded containers for routing bookkeeping (no unbounded caches; spec W22)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

__all__ = ["BoundedMap", "BoundedSet"]

K = TypeVar("K")
V = TypeVar("V")


class BoundedSet(Generic[K]):
    """A set remembering at most ``capacity`` items; the oldest is forgotten first."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self._items: OrderedDict[K, None] = OrderedDict()

    def add(self, item: K) -> bool:
        """Add ``item``; return False when it was already present."""
        if item in self._items:
            return False
        self._items[item] = None
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)
        return True

    def __contains__(self, item: object) -> bool:
        return item in self._items

    def __len__(self) -> int:
        return len(self._items)


class BoundedMap(Generic[K, V]):
    """A mapping keeping at most ``capacity`` entries; the oldest is evicted first."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self._items: OrderedDict[K, V] = OrderedDict()

    def __setitem__(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def get(self, key: K) -> V | None:
        """Return the value for ``key`` or None."""
        return self._items.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)
