"""Scope functions: the privacy firewall between room data and the query agent.

:func:`check_scope_source` applies the static rules once, when the scope
stage ends; :func:`apply_scope` runs the function on every SCOPED tool result
in a locked-down subprocess and denies on any error or timeout.
"""

from __future__ import annotations

from ._compile import MAX_SOURCE_CHARS, ScopeCompileError, check_scope_source
from ._extract import extract_scope_fn
from ._sandbox import DEFAULT_DENY, ScopeDecision, ScopeLimits, apply_scope

__all__ = [
    "DEFAULT_DENY",
    "MAX_SOURCE_CHARS",
    "ScopeCompileError",
    "ScopeDecision",
    "ScopeLimits",
    "apply_scope",
    "check_scope_source",
    "extract_scope_fn",
]
