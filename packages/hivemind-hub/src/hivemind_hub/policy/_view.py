"""Read-only views of agent-bus messages, handed to policies.

Theory of operation
-------------------
The chain used to give every policy its own deep copy of the message, so a
policy could never change what the caller or the next policy saw unless it
returned a new message. Copying once per policy (and once more per
``observe``) dominated the hub's per-message cost. Instead the router copies
the payload once on entry with :func:`freeze`, which builds the same plain
data out of :class:`FrozenDict` and :class:`FrozenList`: subclasses of
``dict`` and ``list`` (so ``isinstance`` checks and JSON encoding behave as
before) whose mutating methods raise :class:`ReadOnlyMessageError`. Every
policy reads that one structure.

A policy that edits its argument in place gets the error on its first write;
the chain then calls it again with a private mutable copy (:func:`thaw`) and
from then on always gives that policy a copy. ``copy.deepcopy`` of a view
returns plain mutable data, so the usual "copy, edit, return" policy works
unchanged. Views are never handed back to code that expects to mutate.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, NoReturn

__all__ = ["FrozenDict", "FrozenList", "ReadOnlyMessageError", "freeze", "thaw"]


class ReadOnlyMessageError(TypeError):
    """A policy tried to change a read-only message view."""


def _refuse(*_args: Any, **_kwargs: Any) -> NoReturn:
    raise ReadOnlyMessageError("policies receive a read-only message; return a changed copy")


class FrozenDict(dict[str, Any]):
    """A ``dict`` whose content cannot be changed through its methods."""

    __slots__ = ()
    __setitem__ = __delitem__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse
    __ior__ = _refuse

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return thaw(self)  # type: ignore[no-any-return]

    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __reduce__(self) -> Any:
        return (dict, (dict(self),))


class FrozenList(list[Any]):
    """A ``list`` whose content cannot be changed through its methods."""

    __slots__ = ()
    __setitem__ = __delitem__ = _refuse
    append = extend = insert = pop = remove = clear = sort = reverse = _refuse
    __iadd__ = __imul__ = _refuse

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return thaw(self)  # type: ignore[no-any-return]

    def __copy__(self) -> list[Any]:
        return list(self)

    def __reduce__(self) -> Any:
        return (list, (list(self),))


def freeze(value: Any) -> Any:
    """Copy JSON-like data into read-only containers (views pass through as is)."""
    if isinstance(value, FrozenDict | FrozenList):
        return value
    if isinstance(value, Mapping):
        return FrozenDict({str(k): freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return FrozenList([freeze(v) for v in value])
    return copy.copy(value)


def thaw(value: Any) -> Any:
    """Copy data (views or not) into plain, mutable dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [thaw(v) for v in value]
    return copy.copy(value)
