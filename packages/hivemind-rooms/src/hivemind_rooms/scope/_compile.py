"""Static rules a scope function must pass before it is ever run.

Theory of operation. The scope agent writes ``def scope(sql, params, rows)``
as Python source; the service never trusts it. This module is the first of
two walls: it parses the source and walks every AST node, refusing imports,
generators, coroutines, classes, ``global``/``nonlocal``, calls to names that
reach the interpreter (``eval``, ``getattr``, ``open`` ...), any attribute
starting with ``_`` and any string mentioning a dunder. The second wall is
:mod:`hivemind_rooms.scope._sandbox`: every call runs in a fresh, resource
limited interpreter with no network and only a short list of builtins, so a
rule this module misses still cannot reach data, files or the network.
"""

from __future__ import annotations

import ast
import re
from typing import Final

__all__ = ["MAX_SOURCE_CHARS", "SAFE_BUILTINS", "ScopeCompileError", "check_scope_source"]

MAX_SOURCE_CHARS: Final = 10_000

SAFE_BUILTINS: Final = [
    "True",
    "False",
    "None",
    "len",
    "str",
    "int",
    "float",
    "bool",
    "list",
    "dict",
    "set",
    "tuple",
    "min",
    "max",
    "sum",
    "sorted",
    "any",
    "all",
    "abs",
    "round",
    "enumerate",
    "zip",
    "range",
    "isinstance",
]

_FORBIDDEN_CALLS: Final = frozenset(
    [
        "exec",
        "eval",
        "compile",
        "__import__",
        "open",
        "input",
        "breakpoint",
        "exit",
        "quit",
        "getattr",
        "setattr",
        "delattr",
        "hasattr",
        "vars",
        "dir",
        "globals",
        "locals",
        "type",
        "memoryview",
        "bytearray",
        "object",
        "super",
        "print",
    ]
)
_FORBIDDEN_NODES: Final = (
    ast.Import,
    ast.ImportFrom,
    ast.Yield,
    ast.YieldFrom,
    ast.AsyncFunctionDef,
    ast.AsyncFor,
    ast.AsyncWith,
    ast.Await,
    ast.Global,
    ast.Nonlocal,
    ast.ClassDef,
    ast.Lambda,
)
_INTERNAL_ATTRS: Final = frozenset(
    [
        "gi_frame",
        "gi_code",
        "f_globals",
        "f_locals",
        "f_builtins",
        "f_back",
        "co_code",
        "tb_frame",
        "tb_next",
        "cr_frame",
        "ag_frame",
        "format_map",
        "mro",
    ]
)
_DUNDER_TEXT: Final = re.compile(r"__\w+__")


class ScopeCompileError(ValueError):
    """The scope source breaks a rule; the message says which (safe to show)."""


def _check_node(node: ast.AST) -> None:
    if isinstance(node, _FORBIDDEN_NODES):
        raise ScopeCompileError(f"{type(node).__name__} is not allowed in a scope function")
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FORBIDDEN_CALLS
    ):
        raise ScopeCompileError(f"calling {node.func.id}() is not allowed")
    if isinstance(node, ast.Name) and (node.id.startswith("__") or node.id in _FORBIDDEN_CALLS):
        raise ScopeCompileError(f"the name {node.id!r} is not allowed")
    if isinstance(node, ast.Attribute):
        name = node.attr
        if (name.startswith("_") and name != "_") or name in _INTERNAL_ATTRS:
            raise ScopeCompileError(f"the attribute {name!r} is not allowed")
    if isinstance(node, ast.FunctionDef) and node.name.startswith("__"):
        raise ScopeCompileError("functions may not have dunder names")
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and _DUNDER_TEXT.search(node.value)
    ):
        raise ScopeCompileError("strings may not mention dunder names")
    if isinstance(node, ast.Dict):
        _check_literal_deny(node)


def _check_literal_deny(node: ast.Dict) -> None:
    for key, value in zip(node.keys, node.values, strict=True):
        if (
            isinstance(key, ast.Constant)
            and key.value == "allow"
            and isinstance(value, ast.Constant)
            and value.value is False
        ):
            raise ScopeCompileError(
                'a literal {"allow": False} is not allowed: transform rows, do not deny'
            )


def _check_module(tree: ast.Module) -> None:
    body = list(tree.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # a module docstring
    if not all(isinstance(stmt, ast.FunctionDef) for stmt in body):
        raise ScopeCompileError("the module may only define functions")
    scope = [s for s in body if isinstance(s, ast.FunctionDef) and s.name == "scope"]
    if len(scope) != 1:
        raise ScopeCompileError("define exactly one top-level function named scope")
    args = scope[0].args
    names = [a.arg for a in args.args]
    extra = args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs or args.defaults
    if names != ["sql", "params", "rows"] or extra:
        raise ScopeCompileError("scope must take exactly (sql, params, rows)")


def check_scope_source(source: object) -> str:
    """Check scope source against every static rule.

    Args:
        source: The candidate source text.

    Returns:
        The source, unchanged, when it passes.

    Raises:
        ScopeCompileError: the first rule it breaks.
    """
    if not isinstance(source, str) or not source.strip():
        raise ScopeCompileError("scope_fn must be non-empty Python source")
    if len(source) > MAX_SOURCE_CHARS:
        raise ScopeCompileError(f"scope_fn is longer than {MAX_SOURCE_CHARS} characters")
    try:
        tree = ast.parse(source, mode="exec")
    except (SyntaxError, ValueError) as exc:
        raise ScopeCompileError(f"scope_fn does not parse: {exc.__class__.__name__}") from None
    for node in ast.walk(tree):
        _check_node(node)
    _check_module(tree)
    return source
