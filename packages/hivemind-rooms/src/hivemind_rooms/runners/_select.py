"""Choosing a runner: the strongest available, or exactly the one asked for."""

from __future__ import annotations

import dataclasses
import logging
from typing import final

from ._types import Runner, RunnerKind, RunnerUnavailable
from .bwrap_runner import BwrapRunner
from .docker_runner import DockerRunner
from .local_runner import LocalRunner, local_runner_allowed

__all__ = ["RunnerStatus", "available_runners", "select_runner"]

_log = logging.getLogger(__name__)


@final
@dataclasses.dataclass(frozen=True)
class RunnerStatus:
    """One runner as ``doctor`` reports it."""

    kind: RunnerKind
    available: bool
    detail: str


def _probe(
    kind: RunnerKind, allow_local: bool, *, build: bool
) -> tuple[Runner | None, RunnerStatus]:
    if kind is RunnerKind.LOCAL:
        if not local_runner_allowed(allow_local):
            return None, RunnerStatus(kind, False, "development only; not enabled")
        status = RunnerStatus(kind, True, "development only: NO isolation")
        return (LocalRunner(allow_local=True) if build else None), status
    runner: DockerRunner | BwrapRunner
    runner = DockerRunner() if kind is RunnerKind.DOCKER else BwrapRunner()
    ok, detail = runner.probe()
    return (runner if ok else None), RunnerStatus(kind, ok, detail)


def available_runners(*, allow_local: bool = False) -> list[RunnerStatus]:
    """Probe every runner, strongest first (blocks for up to a few seconds).

    Args:
        allow_local: Whether the local runner counts as enabled.

    Returns:
        One status per runner kind.
    """
    return [_probe(kind, allow_local, build=False)[1] for kind in RunnerKind]


def select_runner(preference: str | None, *, allow_local: bool) -> Runner:
    """Return the named runner, or the strongest available one (docker > bwrap > local).

    A named runner that is unavailable is an error, never a silent fallback to a
    weaker sandbox. Blocks briefly while probing (call it at startup, or in a thread).

    Args:
        preference: ``docker``, ``bwrap``, ``local``, or ``None``/``auto`` for the best.
        allow_local: Explicitly enables the development-only local runner.

    Raises:
        RunnerUnavailable: the named runner (or, for auto, every runner) is unusable.
    """
    if preference in (None, "", "auto"):
        kinds = list(RunnerKind)
    else:
        try:
            kinds = [RunnerKind(preference)]
        except ValueError:
            raise RunnerUnavailable(f"unknown runner {preference!r}") from None
    reasons = []
    for kind in kinds:
        runner, status = _probe(kind, allow_local, build=True)
        if runner is not None:
            _log.info("sandbox runner: %s (%s)", kind.value, status.detail)
            return runner
        reasons.append(f"{kind.value}: {status.detail}")
    raise RunnerUnavailable("no usable sandbox runner (" + "; ".join(reasons) + ")")
