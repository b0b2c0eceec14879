"""Run cases under trio: a fresh context and an absolute timeout per case.

Theory of operation: every case gets its own context (fresh connections, its
own frame log, a random source seeded from the run seed and the case id), and
runs inside ``trio.move_on_after(timeout)``. Independent cases run
concurrently up to ``concurrency``. The grade follows from how the case ended
and its level: ``Failed`` on a MUST is FAIL and on a SHOULD is NON_STRICT;
``Skipped`` is SKIP; an INFO case or an ``Outcome(info=True)`` is INFO; any
other exception (including the timeout) counts as a failure of the case, since
a conforming target never leaves the suite hanging or confused.
"""

from __future__ import annotations

import fnmatch
import hashlib
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, final

import trio

from ._case import Case, Failed, Grade, Level, Outcome, Profile, Skipped
from ._config import RunConfig
from ._peer import LogEntry

ContextFactory = Callable[
    [Case, RunConfig, random.Random, list[LogEntry]], AbstractAsyncContextManager[Any]
]


@final
@dataclass(slots=True)
class CaseResult:
    """The graded result of one case."""

    case: Case
    grade: Grade
    note: str = ""
    expected: str = ""
    actual: str = ""
    duration: float = 0.0
    log: list[LogEntry] = field(default_factory=list)


def select(cases: Iterable[Case], profile: Profile, patterns: Sequence[str] = ()) -> list[Case]:
    """Cases of ``profile`` (and below) whose id matches a pattern (prefix or glob)."""
    chosen = []
    for case in cases:
        if not profile.includes(case.profile):
            continue
        if patterns and not any(_matches(case.id, p) for p in patterns):
            continue
        chosen.append(case)
    return chosen


def _matches(case_id: str, pattern: str) -> bool:
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatchcase(case_id, pattern)
    return case_id.startswith(pattern) or case_id.endswith("/" + pattern)


def case_random(seed: int, case_id: str) -> random.Random:
    """The seeded random source of one case."""
    digest = hashlib.sha256(f"{seed}:{case_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def grade(case: Case, outcome: Outcome | None) -> Grade:
    """The grade of a case that returned normally."""
    if case.level is Level.INFO or (outcome is not None and outcome.info):
        return Grade.INFO
    return Grade.PASS


def failed_grade(case: Case) -> Grade:
    """The grade of a case whose requirement was broken."""
    return {Level.MUST: Grade.FAIL, Level.SHOULD: Grade.NON_STRICT, Level.INFO: Grade.INFO}[
        case.level
    ]


async def run_one(case: Case, config: RunConfig, factory: ContextFactory) -> CaseResult:
    """Run one case on a fresh context with the configured timeout."""
    log: list[LogEntry] = []
    result = CaseResult(case, Grade.FAIL, log=log)
    started = time.monotonic()
    with trio.move_on_after(config.timeout) as scope:
        try:
            async with factory(case, config, case_random(config.seed, case.id), log) as ctx:
                outcome = await case.run(ctx)
            result.grade = grade(case, outcome)
            result.note = outcome.note if outcome else ""
        except Exception as raised:
            _record_exception(result, unwrap(raised))
    if scope.cancelled_caught:
        result.grade = failed_grade(case)
        result.expected = f"the case to finish within {config.timeout:g} s"
        result.actual = "timed out"
    result.duration = time.monotonic() - started
    return result


def unwrap(exc: BaseException) -> BaseException:
    """The meaningful exception inside (possibly nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup):
        leaves = list(exc.exceptions)
        verdicts = [e for e in leaves if isinstance(e, Failed | Skipped | BaseExceptionGroup)]
        exc = (verdicts or leaves)[0]
    return exc


def _record_exception(result: CaseResult, exc: BaseException) -> None:
    case = result.case
    if isinstance(exc, Failed):
        result.grade, result.expected, result.actual = failed_grade(case), exc.expected, exc.actual
    elif isinstance(exc, Skipped):
        result.grade, result.note = Grade.SKIP, str(exc)
    else:
        result.grade = failed_grade(case)
        result.expected = "the case to run to completion"
        result.actual = f"{type(exc).__name__}: {exc}"


async def run_cases(
    cases: Sequence[Case], config: RunConfig, factory: ContextFactory
) -> list[CaseResult]:
    """Run ``cases`` with at most ``config.concurrency`` at once; results in case order."""
    results: list[CaseResult | None] = [None] * len(cases)
    limiter = trio.CapacityLimiter(max(1, config.concurrency))

    async def worker(index: int, case: Case) -> None:
        async with limiter:
            results[index] = await run_one(case, config, factory)

    async with trio.open_nursery() as nursery:
        for index, case in enumerate(cases):
            nursery.start_soon(worker, index, case)
    return [r for r in results if r is not None]


@asynccontextmanager
async def hub_context(
    case: Case, config: RunConfig, rng: random.Random, log: list[LogEntry]
) -> AsyncIterator[Any]:
    """Context factory of hub mode."""
    from ._hubctx import HubContext

    async with HubContext(config, rng, log) as ctx:
        yield ctx


async def check_hub(
    config: RunConfig, patterns: Sequence[str] = (), cases: Sequence[Case] | None = None
) -> list[CaseResult]:
    """Run the hub cases against the hub at ``config.target`` (no pytest needed)."""
    from .cases import HUB_CASES

    chosen = select(cases if cases is not None else HUB_CASES, config.profile, patterns)
    return await run_cases(chosen, config, hub_context)


async def check_client(
    config: RunConfig,
    launch: Callable[[str], AbstractAsyncContextManager[Any]],
    patterns: Sequence[str] = (),
    cases: Sequence[Case] | None = None,
) -> list[CaseResult]:
    """Run the client cases; ``launch(url)`` starts the client under test for one case."""
    from ._clientctx import client_context_factory
    from .cases import CLIENT_CASES

    chosen = select(cases if cases is not None else CLIENT_CASES, config.profile, patterns)
    return await run_cases(chosen, config, client_context_factory(launch))
