"""Apply a scope function to one tool result, in a locked-down subprocess.

Every SCOPED tool call goes through :func:`apply_scope`: a fresh interpreter
(``python -I -S``) runs :mod:`._worker`, which limits its own CPU time,
memory, files and children, drops the network and refuses dangerous audit
events before it loads the function. The parent kills it at the deadline.
Anything other than a well-formed ``allow`` decision (crash, timeout,
oversized or malformed output) denies the call.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, final

import trio

from hivemind_rooms.scope._compile import SAFE_BUILTINS

__all__ = ["DEFAULT_DENY", "ScopeDecision", "ScopeLimits", "apply_scope"]

DEFAULT_DENY: Final = "Query denied by scope function"
_WORKER: Final = Path(__file__).with_name("_worker.py")


@final
@dataclasses.dataclass(frozen=True)
class ScopeLimits:
    """Resources one scope-function call may use.

    Attributes:
        timeout_s: Wall-clock limit; the process is killed after it.
        cpu_s: CPU-seconds limit (``RLIMIT_CPU``).
        memory_mb: Address-space limit (``RLIMIT_AS``).
        max_output_bytes: Largest decision accepted from the worker.
    """

    timeout_s: float = 15.0
    cpu_s: int = 10
    memory_mb: int = 512
    max_output_bytes: int = 32 * 1024 * 1024


@final
@dataclasses.dataclass(frozen=True)
class ScopeDecision:
    """The outcome of one call: allowed rows or a deny message."""

    allow: bool
    rows: list[dict[str, Any]] = dataclasses.field(default_factory=list, repr=False)
    error: str = ""


async def _kill(process: trio.Process) -> None:
    process.kill()


def _parse(stdout: bytes) -> ScopeDecision:
    try:
        data = json.loads(stdout.decode("utf-8").strip().splitlines()[-1])
    except (ValueError, IndexError, UnicodeDecodeError):
        return ScopeDecision(False, error=DEFAULT_DENY)
    if isinstance(data, dict) and data.get("allow") is True and isinstance(data.get("rows"), list):
        return ScopeDecision(True, rows=data["rows"])
    error = data.get("error") if isinstance(data, dict) else ""
    return ScopeDecision(False, error=str(error)[:500] if error else DEFAULT_DENY)


async def apply_scope(
    source: str,
    sql: str,
    params: Sequence[Any],
    rows: Sequence[dict[str, Any]],
    *,
    limits: ScopeLimits = ScopeLimits(),
) -> ScopeDecision:
    """Call ``scope(sql, params, rows)`` in a locked-down subprocess.

    Args:
        source: Scope source that passed :func:`check_scope_source`.
        sql: The SQL text the agent ran ("" for non-SQL tools).
        params: The parameters actually used.
        rows: The raw result rows.
        limits: Time, CPU and memory bounds.

    Returns:
        The decision; every failure is a deny.
    """
    request = json.dumps(
        {
            "source": source,
            "sql": sql,
            "params": list(params),
            "rows": list(rows),
            "builtins": SAFE_BUILTINS,
        },
        default=str,
    ).encode("utf-8")
    command = [
        sys.executable, "-I", "-S", "-B", str(_WORKER),
        str(max(1, math.ceil(limits.cpu_s))), str(limits.memory_mb * 1024 * 1024),
    ]  # fmt: skip
    result = None
    with trio.move_on_after(limits.timeout_s):
        result = await trio.run_process(
            command,
            stdin=request,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            deliver_cancel=_kill,
            env={},
        )
    if result is None or result.returncode != 0:
        return ScopeDecision(False, error=DEFAULT_DENY)
    if len(result.stdout) > limits.max_output_bytes:
        return ScopeDecision(False, error=DEFAULT_DENY)
    return _parse(result.stdout)
