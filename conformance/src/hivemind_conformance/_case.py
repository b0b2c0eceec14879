"""What a conformance case is, and what running one produces.

A case checks one requirement of ``docs/spec``. It raises ``Failed`` when the
target broke the requirement, ``Skipped`` when the target cannot be driven to
the stimulus (missing credentials, an optional feature it does not offer),
and returns an ``Outcome`` note otherwise. The runner turns that into a grade
using the case's level: a broken MUST is FAIL, a broken SHOULD is NON_STRICT,
an INFO case never fails.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, final


class Level(Enum):
    """How strongly the requirement binds."""

    MUST = "MUST"
    SHOULD = "SHOULD"
    INFO = "INFO"


class Profile(Enum):
    """Which wire profile the requirement belongs to (see docs/spec §0)."""

    L = "L"
    S = "S"
    N = "N"

    def includes(self, other: Profile) -> bool:
        """Whether running profile ``self`` also runs cases of ``other``.

        L runs L; S runs L and S; N runs everything.
        """
        order = {Profile.L: 0, Profile.S: 1, Profile.N: 2}
        return order[other] <= order[self]


class Grade(Enum):
    """The verdict on one case."""

    PASS = "PASS"
    NON_STRICT = "NON_STRICT"
    FAIL = "FAIL"
    INFO = "INFO"
    SKIP = "SKIP"


class Failed(Exception):
    """The target broke the requirement.

    Args:
        expected: what the requirement asks for.
        actual: what was observed.
    """

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"expected {expected}; observed {actual}")
        self.expected = expected
        self.actual = actual


class Skipped(Exception):
    """The case could not run against this target; the message says why."""


@final
@dataclass(slots=True)
class Outcome:
    """What a case observed when it did not fail.

    Args:
        note: one line for the report.
        info: an observation for INFO cases (the requirement is not graded).
    """

    note: str = ""
    info: bool = False


CaseRun = Callable[[Any], Awaitable[Outcome | None]]


@final
@dataclass(frozen=True, slots=True)
class Case:
    """One conformance case.

    Args:
        id: ``<mode>/<section>/<check>``, for example ``hub/3.4/H07``.
        section: the docs/spec section the requirement lives in.
        title: a short description of the stimulus.
        requirement: the requirement sentence, quoted from docs/spec.
        level: MUST, SHOULD or INFO.
        profile: the wire profile (L, S or N).
        run: the coroutine function; it receives a mode context.
        since_version: the suite version that introduced the case.
    """

    id: str
    section: str
    title: str
    requirement: str
    level: Level
    profile: Profile
    run: CaseRun = field(repr=False, compare=False)
    since_version: str = "0.1"

    @property
    def mode(self) -> str:
        """``hub`` or ``client``."""
        return self.id.split("/", 1)[0]

    @property
    def check(self) -> str:
        """The check name after the section (``H07``)."""
        return self.id.rsplit("/", 1)[-1]


def make_registry() -> tuple[list[Case], Callable[..., Callable[[CaseRun], CaseRun]]]:
    """Return a case list and a decorator that appends to it.

    The decorator takes the ``Case`` fields other than ``run``.
    """
    cases: list[Case] = []

    def case(
        id: str,
        section: str,
        title: str,
        requirement: str,
        level: Level,
        profile: Profile,
    ) -> Callable[[CaseRun], CaseRun]:
        def register(run: CaseRun) -> CaseRun:
            cases.append(Case(id, section, title, requirement, level, profile, run))
            return run

        return register

    return cases, case


def expect(condition: bool, expected: str, actual: str) -> None:
    """Raise ``Failed`` unless ``condition`` holds."""
    if not condition:
        raise Failed(expected, actual)
