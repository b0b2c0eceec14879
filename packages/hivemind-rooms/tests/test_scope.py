"""Scope functions: static rules and the locked-down per-call subprocess."""

from __future__ import annotations

import json
import time

import pytest
import trio
from hivemind_rooms.scope import (
    DEFAULT_DENY,
    ScopeCompileError,
    ScopeLimits,
    apply_scope,
    check_scope_source,
    extract_scope_fn,
)

GOOD = """
def scope(sql, params, rows):
    out = []
    for row in rows:
        out.append({"city": row["city"]})
    return {"allow": True, "rows": out}
"""


def body(lines: str) -> str:
    return "def scope(sql, params, rows):\n" + "\n".join("    " + x for x in lines.splitlines())


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("import os\n" + GOOD, "Import"),
        ("from os import path\n" + GOOD, "ImportFrom"),
        ("def scope(sql, params):\n    return {}\n", "exactly"),
        ("def scope(sql, params, rows, extra=1):\n    return {}\n", "exactly"),
        ("def other(sql, params, rows):\n    return {}\n", "exactly one"),
        (GOOD + "\nclass X:\n    pass\n", "ClassDef"),
        (body("class X:\n    pass\nreturn {}"), "ClassDef"),
        (body("return rows.__class__"), "attribute"),
        (body("return rows._private"), "attribute"),
        (body("return getattr(rows, 'x')"), "getattr"),
        (body("return eval('1')"), "eval"),
        (body("x = '__import__'\nreturn {}"), "dunder"),
        (body("yield rows"), "Yield"),
        (body("global g\nreturn {}"), "Global"),
        (body("f = lambda: 1\nreturn {}"), "Lambda"),
        (body('return {"allow": False}'), "transform rows"),
        (GOOD + "\nX = 1\n", "module may only"),
        ("def scope(sql, params, rows):\n    return (\n", "parse"),
        ("x" * 10_001, "longer"),
        ("   ", "non-empty"),
    ],
)
def test_static_rules_refuse(source: str, reason: str) -> None:
    with pytest.raises(ScopeCompileError, match=reason):
        check_scope_source(source)


def test_good_source_and_extraction() -> None:
    assert check_scope_source(GOOD) == GOOD
    noisy = (
        "thinking...\n" + json.dumps({"scope_fn": "bad"}) + "\n" + json.dumps({"scope_fn": GOOD})
    )
    assert extract_scope_fn(noisy) == GOOD  # the last object wins
    with pytest.raises(ScopeCompileError, match="no JSON object"):
        extract_scope_fn("no json here {not json")


async def test_transform_runs_in_subprocess() -> None:
    rows = [{"city": "Lisbon", "email": "a@x.org"}, {"city": "Porto", "email": "b@x.org"}]
    decision = await apply_scope(GOOD, "SELECT *", [], rows)
    assert decision.allow
    assert decision.rows == [{"city": "Lisbon"}, {"city": "Porto"}]


async def test_computed_deny_carries_its_message() -> None:
    source = body('verdict = not rows\nreturn {"allow": verdict, "error": "only empty results"}')
    decision = await apply_scope(source, "SELECT 1", [], [{"a": 1}])
    assert not decision.allow
    assert decision.error == "only empty results"


@pytest.mark.parametrize(
    "source",
    [
        body("return rows"),  # not a dict
        body('return {"allow": True}'),  # no rows
        body('return {"allow": True, "rows": rows[0]}'),  # rows not a list
        body("return {'allow': True, 'rows': [1 / 0]}"),  # raises
        body("x = 'a' * (10 ** 10)\nreturn {'allow': True, 'rows': []}"),  # memory bomb
        body("return scope(sql, params, rows)"),  # unbounded recursion
    ],
)
async def test_every_failure_denies(source: str) -> None:
    check_scope_source(source)
    decision = await apply_scope(source, "SELECT {0}", [], [{"a": 1}])
    assert not decision.allow
    assert decision.rows == []


async def test_endless_loop_is_killed_and_denied() -> None:
    source = body("n = 0\nwhile True:\n    n = n + 1\nreturn {}")
    started = time.monotonic()
    with trio.fail_after(20):
        decision = await apply_scope(source, "", [], [], limits=ScopeLimits(timeout_s=1.0))
    assert not decision.allow
    assert decision.error == DEFAULT_DENY
    assert time.monotonic() - started < 10


async def test_worker_refuses_network_files_and_processes_even_past_the_rules() -> None:
    # The static rules would refuse these; the worker must refuse them on its own.
    attempts = [
        "import socket\ndef scope(sql, params, rows):\n"
        "    socket.create_connection(('127.0.0.1', 9))\n    return {'allow': True, 'rows': []}\n",
        "def scope(sql, params, rows):\n    open('/etc/hostname').read()\n"
        "    return {'allow': True, 'rows': []}\n",
        "import os\ndef scope(sql, params, rows):\n    os.system('true')\n"
        "    return {'allow': True, 'rows': []}\n",
    ]
    for source in attempts:
        decision = await apply_scope(source, "", [], [])
        assert not decision.allow, source
