"""Find the scope function in a scope agent's output."""

from __future__ import annotations

import json

from ._compile import ScopeCompileError, check_scope_source

__all__ = ["extract_scope_fn"]


def extract_scope_fn(output: str) -> str:
    """Return the checked ``scope_fn`` source from the last JSON object that holds one.

    Args:
        output: The scope stage's output text.

    Returns:
        Source that passed every static rule.

    Raises:
        ScopeCompileError: no object with ``scope_fn``, or the source breaks a rule.
    """
    decoder = json.JSONDecoder()
    found: object = None
    index = output.find("{")
    while index != -1:
        try:
            value, end = decoder.raw_decode(output, index)
        except ValueError:
            index = output.find("{", index + 1)
            continue
        if isinstance(value, dict) and "scope_fn" in value:
            found = value["scope_fn"]
        index = output.find("{", end)
    if found is None:
        raise ScopeCompileError("the scope agent produced no JSON object with scope_fn")
    return check_scope_source(found)
