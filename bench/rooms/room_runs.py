"""Room runs per minute with concurrent participants, beside plain sandbox starts.

Theory of operation. A real room service (``serve_rooms``: hypercorn on
127.0.0.1, port 0) runs in this process with the chosen runner and credit
enforcement on. An owner publishes a room over three sample rows with the
repository's deterministic default scope, query and mediator agents (no
LLM). Every participant gets its own payer tenant (granted credit) and its
own invite, and asks through :mod:`hmctl.client` (submit, then poll the run
until it ends) in a worker thread, one question after the other. A run
counts only when it completed, carries a signed run attestation and its
output holds the expected row without the hidden column or the redacted
city.

After one warm-up run per participant (agent preparation, first unwrap of
each invite's room key), a window of ``duration_s`` opens; runs started in
it are waited for, and the rate is completed runs over the time until the
last one ended. The run count is bounded as well as the time.

The baseline starts the sandbox directly, the way the overhead table does,
from as many concurrent tasks, ``stages`` starts in a row per iteration,
where ``stages`` is how many stages a warm-up run launched. The engine's
worker pool (``HIVEMIND_RUN_WORKERS``) caps how many runs use sandboxes at
once and that baseline has no such cap, so its ratio carries the pool's
limit together with everything else a run does (bridge, scope calls,
ledger, signing). A second baseline with as many tasks as the pool has
workers isolates the rest: with more participants than workers the pool is
never idle, so ``workers * 60 / runs per minute`` is the worker time one run
takes, and the same figure for the plain iterations is what its sandbox
starts alone take at that parallelism.
"""

from __future__ import annotations

import functools
import os
import secrets
import statistics
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio
from hivemind_rooms._serve import serve_rooms
from hivemind_rooms.manifest import OwnerKey
from hivemind_rooms.pipeline import EngineConfig
from hivemind_rooms.settings import Settings
from hmctl.client import RoomApi, RoomSpec, RunBudget, create_room, submit_run, wait_for_run
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

AGENTS = Path(__file__).resolve().parents[2] / "agents"
QUESTION = "Who lives where? SQL: SELECT name, email, city FROM people"
ROWS = (
    ("Ann", "ann@example.org", "Lisbon"),
    ("Bob", "bob@example.org", "Porto"),
    ("Cy", "cy@example.org", "Lisbon"),
)
POLICY = "hide: email\nredact: Porto"
CREDIT_USD = "5"


class RunProblem(Exception):
    """A run ended but not as a completed, attested, correctly mediated answer."""


@dataclass(frozen=True)
class LoadPlan:
    """How hard and how long to push.

    Attributes:
        participants: Concurrent askers (and concurrent baseline tasks).
        duration_s: Length of the measured window of room runs.
        baseline_s: Length of each plain-start window.
        max_runs: Most runs (or baseline iterations) started per window.
        poll_s: Interval between a participant's run status requests.
        run_deadline_s: Longest a participant waits for one run.
    """

    participants: int = 10
    duration_s: float = 20.0
    baseline_s: float = 10.0
    max_runs: int = 1000
    poll_s: float = 0.2
    run_deadline_s: float = 120.0


@dataclass
class LoadResult:
    """What one measured window produced."""

    label: str
    tasks: int = 0
    completed: int = 0
    failed: int = 0
    wall_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def per_minute(self) -> float:
        """Completed iterations per minute of wall time."""
        return self.completed * 60.0 / self.wall_s if self.wall_s > 0 else 0.0

    def busy_ms(self, parallel: int) -> float | None:
        """Time one iteration holds one of ``parallel`` always-busy slots, in ms."""
        return parallel * 60_000.0 / self.per_minute if self.per_minute > 0 else None

    def percentile_ms(self, q: float) -> float | None:
        """Nearest-rank percentile ``q`` (0..100) of the latencies, or None without samples."""
        if not self.latencies_s:
            return None
        ordered = sorted(self.latencies_s)
        rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
        return ordered[rank] * 1000

    def to_dict(self) -> dict[str, Any]:
        """The figures as JSON-ready values."""
        return {
            "label": self.label,
            "tasks": self.tasks,
            "completed": self.completed,
            "failed": self.failed,
            "wall_s": round(self.wall_s, 3),
            "per_minute": round(self.per_minute, 2),
            "mean_ms": round(statistics.fmean(self.latencies_s) * 1000, 1)
            if self.latencies_s
            else None,
            "p50_ms": _rounded(self.percentile_ms(50)),
            "p95_ms": _rounded(self.percentile_ms(95)),
            "failures": dict(self.reasons),
        }


def _rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:120]}"


def new_progress() -> Progress:
    """The Rich progress display (on stderr, so stdout keeps only the figures)."""
    return Progress(
        TextColumn("{task.description:40}"),
        BarColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[ok]} ok, {task.fields[failed]} failed"),
        console=Console(stderr=True),
    )


async def drive(
    label: str,
    calls: Sequence[Callable[[], Awaitable[object]]],
    plan: LoadPlan,
    progress: Progress,
    *,
    window_s: float,
) -> LoadResult:
    """Call each of ``calls`` from its own task, again and again, for ``window_s``.

    Every call is timed; a call that raises is a failure (its reason is
    counted). No call starts after the window or beyond ``plan.max_runs``;
    calls started in the window are waited for.
    """
    result = LoadResult(label, tasks=len(calls))
    started = time.monotonic()
    deadline = started + window_s
    issued = 0
    task = progress.add_task(label, total=window_s, ok=0, failed=0)

    async def participant(call: Callable[[], Awaitable[object]]) -> None:
        nonlocal issued
        while time.monotonic() < deadline and issued < plan.max_runs:
            issued += 1
            begun = time.perf_counter()
            try:
                await call()
            except Exception as exc:
                result.failed += 1
                result.reasons[_reason(exc)] += 1
            else:
                result.completed += 1
                result.latencies_s.append(time.perf_counter() - begun)

    def show() -> None:
        elapsed = min(window_s, time.monotonic() - started)
        progress.update(task, completed=elapsed, ok=result.completed, failed=result.failed)

    async def ticker() -> None:
        while True:
            show()
            await trio.sleep(0.25)

    with trio.fail_after(window_s + plan.run_deadline_s + 30):
        async with trio.open_nursery() as outer:
            outer.start_soon(ticker)
            async with trio.open_nursery() as nursery:
                for call in calls:
                    nursery.start_soon(participant, call)
            outer.cancel_scope.cancel()
    result.wall_s = time.monotonic() - started
    show()
    return result


# -- the room service and its participants -----------------------------------------------


@dataclass(frozen=True)
class Service:
    """A running room service: where, who administers it, its run worker pool."""

    base: str
    admin_key: str = field(repr=False)
    runner: str
    workers: int
    queue_size: int


@dataclass(frozen=True)
class Participant:
    """One asker: an invite to the room and a payer tenant key."""

    invite: str = field(repr=False)
    payer_key: str = field(repr=False)


@dataclass(frozen=True)
class BenchRoom:
    """The published room and its participants."""

    room_id: str
    participants: tuple[Participant, ...]


@asynccontextmanager
async def room_service(data_dir: Path, runner: str) -> AsyncIterator[Service]:
    """Serve the room service on 127.0.0.1:0 with ``runner``; yields it.

    The engine reads its runner and pool size from ``HIVEMIND_*`` variables
    when the app is built, so they are set for the lifetime of the service
    and restored afterwards.
    """
    env = {"HIVEMIND_RUNNER": runner, "HIVEMIND_ALLOW_LOCAL_RUNNER": str(int(runner == "local"))}
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        config = EngineConfig.from_env()
        admin = secrets.token_urlsafe(24)
        settings = Settings(
            data_dir=data_dir, admin_key=admin, host="127.0.0.1", port=0, enforce_credits=True
        )
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(functools.partial(serve_rooms, settings))
            try:
                base = str(urls[0]).rstrip("/")
                yield Service(base, admin, runner, config.workers, config.queue_size)
            finally:
                nursery.cancel_scope.cancel()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _tenant(admin: RoomApi, name: str) -> dict[str, Any]:
    return dict(admin.request("POST", "/v1/admin/tenants", json={"name": name}))


def _seed(owner: RoomApi) -> None:
    sql = "CREATE TABLE people (name TEXT, email TEXT, city TEXT)"
    owner.request("POST", "/v1/tenant/sql", json={"sql": sql, "params": []})
    for row in ROWS:
        sql = "INSERT INTO people VALUES (?, ?, ?)"
        owner.request("POST", "/v1/tenant/sql", json={"sql": sql, "params": list(row)})


def publish_room(service: Service, participants: int) -> BenchRoom:
    """Create the owner, the payers (with credit), the room and one invite per participant.

    Blocking: call it in a worker thread.
    """
    with RoomApi(service.base, service.admin_key) as admin:
        owner = _tenant(admin, "bench-owner")
        payers = [_tenant(admin, f"bench-payer-{i}") for i in range(participants)]
        for payer in payers:
            admin.request(
                "POST",
                f"/v1/admin/billing/{payer['tenant_id']}/credits",
                json={"amount_usd": CREDIT_USD, "note": "bench/rooms"},
            )
    spec = RoomSpec(
        scope=str(AGENTS / "default-scope"),
        query_agent=str(AGENTS / "default-query"),
        query_visibility="inspectable",
        mediator_agent=str(AGENTS / "default-mediator"),
        name="bench",
        policy=POLICY,
        llm_providers=(),
        allowed_tables=("people",),
    )
    with RoomApi(service.base, owner["api_key"]) as api:
        _seed(api)
        room = create_room(api, OwnerKey.generate(), spec)
        room_id = str(room["room_id"])
        invites = [api.request("POST", f"/v1/rooms/{room_id}/invites") for _ in payers]
    members = tuple(
        Participant(str(invite["token"]), str(payer["api_key"]))
        for invite, payer in zip(invites, payers, strict=True)
    )
    return BenchRoom(room_id, members)


def check_run(run: dict[str, Any]) -> None:
    """Accept only a completed, attested run whose answer was mediated per the policy.

    Raises:
        RunProblem: anything else.
    """
    if run.get("status") != "completed":
        raise RunProblem(f"run {run.get('status')}: {str(run.get('error'))[:80]}")
    if not isinstance(run.get("attestation"), dict):
        raise RunProblem("completed run without a run attestation")
    output = str(run.get("output") or "")
    if "Lisbon" not in output or "example.org" in output or "Porto" in output:
        raise RunProblem("the answer does not follow the room policy")


def ask(api: RoomApi, room_id: str, plan: LoadPlan) -> dict[str, Any]:
    """Submit the question and follow the run to its end (blocking).

    Raises:
        RunProblem: the run did not complete as expected.
        RoomClientError: the service refused, or the run outlived the deadline.
    """
    accepted = submit_run(api, room_id, QUESTION, RunBudget())
    run = wait_for_run(
        api, str(accepted["run_id"]), deadline_seconds=plan.run_deadline_s, interval=plan.poll_s
    )
    check_run(run)
    return run


# -- the measurement ----------------------------------------------------------------------


@dataclass
class RunsReport:
    """Both sides of the comparison and what bounds them."""

    runner: str
    participants: int
    workers: int
    queue_size: int
    stages: int
    setup_s: float
    warmup: LoadResult
    pipeline: LoadResult
    baselines: list[LoadResult]
    stage_seconds: list[float] = field(default_factory=list)

    def ratio(self, baseline: LoadResult) -> float | None:
        """Pipeline runs per minute over ``baseline`` iterations per minute."""
        if baseline.per_minute == 0:
            return None
        return self.pipeline.per_minute / baseline.per_minute

    def pool_figures(self) -> PoolFigures | None:
        """Where a run's worker time goes, at the pool's parallelism.

        Only meaningful when the pool is saturated (more participants than
        workers), a baseline ran with ``workers`` tasks and runs reported
        their stage times.
        """
        pooled = [b for b in self.baselines if b.tasks == self.workers]
        if self.participants <= self.workers or not pooled or not self.stage_seconds:
            return None
        run_ms, plain_ms = self.pipeline.busy_ms(self.workers), pooled[0].busy_ms(self.workers)
        if run_ms is None or plain_ms is None:
            return None
        return PoolFigures(run_ms, statistics.fmean(self.stage_seconds) * 1000, plain_ms)

    def to_dict(self) -> dict[str, Any]:
        """The figures as JSON-ready values."""
        return {
            "runner": self.runner,
            "participants": self.participants,
            "workers": self.workers,
            "queue_size": self.queue_size,
            "stages_per_run": self.stages,
            "setup_s": round(self.setup_s, 2),
            "warmup": self.warmup.to_dict(),
            "pipeline": self.pipeline.to_dict(),
            "baselines": [
                {**b.to_dict(), "ratio": _rounded(self.ratio(b), 4)} for b in self.baselines
            ],
            "pool_worker_ms": figures.to_dict() if (figures := self.pool_figures()) else None,
        }


@dataclass(frozen=True)
class PoolFigures:
    """One run's worker time with the pool saturated, and its parts (ms).

    Attributes:
        per_run_ms: ``workers * 60 000 / runs per minute``.
        in_stages_ms: Mean of the stage times the engine metered per run
            (agent files written, prepared, bridge served, sandbox run).
        plain_starts_ms: The same for one plain-start iteration.
    """

    per_run_ms: float
    in_stages_ms: float
    plain_starts_ms: float

    def to_dict(self) -> dict[str, float]:
        """The figures as JSON-ready values, with the two differences."""
        return {
            "per_run_ms": round(self.per_run_ms, 1),
            "in_stages_ms": round(self.in_stages_ms, 1),
            "plain_starts_ms": round(self.plain_starts_ms, 1),
            "stages_beyond_starts_ms": round(self.in_stages_ms - self.plain_starts_ms, 1),
            "outside_stages_ms": round(self.per_run_ms - self.in_stages_ms, 1),
            "beyond_starts_ms": round(self.per_run_ms - self.plain_starts_ms, 1),
        }


def _asker(
    api: RoomApi, room_id: str, plan: LoadPlan, runs: list[dict[str, Any]]
) -> Callable[[], Awaitable[None]]:
    async def one() -> None:
        runs.append(await trio.to_thread.run_sync(ask, api, room_id, plan))

    return one


def _stages(
    baseline: Callable[[], Awaitable[object]], stages: int
) -> Callable[[], Awaitable[None]]:
    async def one() -> None:
        for _ in range(stages):
            await baseline()

    return one


@dataclass
class _Asked:
    """What the participants measured: warm-up, window, stages per run, the window's runs."""

    warmup: LoadResult
    pipeline: LoadResult
    stages: int
    runs: list[dict[str, Any]]


async def _ask_room(
    service: Service, room: BenchRoom, plan: LoadPlan, progress: Progress
) -> _Asked:
    """One warm-up run per participant at once, then the measured window."""
    apis = [
        RoomApi(service.base, p.invite, payer_key=p.payer_key, timeout=60)
        for p in room.participants
    ]
    warm_plan = LoadPlan(
        participants=plan.participants,
        max_runs=plan.participants,
        poll_s=plan.poll_s,
        run_deadline_s=max(plan.run_deadline_s, 300.0),
    )
    warm_runs: list[dict[str, Any]] = []
    measured: list[dict[str, Any]] = []
    try:
        once = [_asker(api, room.room_id, warm_plan, warm_runs) for api in apis]
        warmup = await _drive_once("warm-up: one run per participant", once, progress)
        pipeline = await drive(
            f"{service.runner}: room runs, {plan.participants} participants",
            [_asker(api, room.room_id, plan, measured) for api in apis],
            plan,
            progress,
            window_s=plan.duration_s,
        )
    finally:
        for api in apis:
            api.close()
    stages = len(warm_runs[0]["usage"]["stages"]) if warm_runs else 0
    return _Asked(warmup, pipeline, stages, measured)


async def measure_runs(
    data_dir: Path,
    runner: str,
    baseline: Callable[[], Awaitable[object]],
    plan: LoadPlan,
) -> RunsReport:
    """Measure runs per minute through the room service, then the plain-start baselines.

    Args:
        data_dir: An empty directory for the service's data.
        runner: The runner kind the engine uses (``docker``, ``bwrap``, ``local``).
        baseline: One plain start of the same sandbox (no-op agent).
        plan: Participants, windows and bounds.
    """
    with new_progress() as progress:
        async with room_service(data_dir, runner) as service:
            label = f"setup: room, {plan.participants} payers and invites"
            task = progress.add_task(label, total=1, ok=0, failed=0)
            begun = time.monotonic()
            room = await trio.to_thread.run_sync(publish_room, service, plan.participants)
            setup_s = time.monotonic() - begun
            progress.update(task, completed=1, ok=1)
            asked = await _ask_room(service, room, plan, progress)
        baselines = []
        tasks = sorted({plan.participants, min(service.workers, plan.participants)}, reverse=True)
        for count in tasks if asked.stages else ():
            result = await drive(
                f"plain {runner}: {asked.stages} starts x {count} tasks",
                [_stages(baseline, asked.stages)] * count,
                plan,
                progress,
                window_s=plan.baseline_s,
            )
            baselines.append(result)
    return RunsReport(
        runner=runner,
        participants=plan.participants,
        workers=service.workers,
        queue_size=service.queue_size,
        stages=asked.stages,
        setup_s=setup_s,
        warmup=asked.warmup,
        pipeline=asked.pipeline,
        baselines=baselines,
        stage_seconds=[_stage_seconds(run) for run in asked.runs],
    )


def _stage_seconds(run: dict[str, Any]) -> float:
    return float(sum(stage["seconds"] for stage in run["usage"]["stages"].values()))


async def _drive_once(
    label: str, calls: Sequence[Callable[[], Awaitable[object]]], progress: Progress
) -> LoadResult:
    """Each call once, all at once (the warm-up)."""
    result = LoadResult(label, tasks=len(calls))
    task = progress.add_task(label, total=len(calls), ok=0, failed=0)
    started = time.monotonic()

    async def one(call: Callable[[], Awaitable[object]]) -> None:
        begun = time.perf_counter()
        try:
            await call()
        except Exception as exc:
            result.failed += 1
            result.reasons[_reason(exc)] += 1
        else:
            result.completed += 1
            result.latencies_s.append(time.perf_counter() - begun)
        progress.update(task, advance=1, ok=result.completed, failed=result.failed)

    with trio.fail_after(330):
        async with trio.open_nursery() as nursery:
            for call in calls:
                nursery.start_soon(one, call)
    result.wall_s = time.monotonic() - started
    return result


def print_report(report: RunsReport, plan: LoadPlan) -> None:
    """The runs-per-minute table on stdout."""
    print(
        f"\nroom runs through the service ({report.runner} runner): {report.participants} "
        f"concurrent participants, {plan.duration_s:g} s window (at most {plan.max_runs} runs), "
        f"plain-start windows {plan.baseline_s:g} s"
    )
    print(
        f"engine worker pool: {report.workers} runs at once (HIVEMIND_RUN_WORKERS), "
        f"queue {report.queue_size}; {report.stages} sandbox stages per run; "
        f"setup {report.setup_s:.1f} s; run status polled every {plan.poll_s * 1000:.0f} ms"
    )
    header = (
        f"{'side':40} {'per min':>9} {'done':>6} {'failed':>6} {'p50 ms':>9} {'p95 ms':>9} "
        f"{'runs/min ratio':>15}"
    )
    print(header)
    print("-" * len(header))
    for row in (report.warmup, report.pipeline, *report.baselines):
        ratio = report.ratio(row) if row in report.baselines else None
        print(
            f"{row.label:40} {row.per_minute:9.1f} {row.completed:6d} {row.failed:6d} "
            f"{_cell(row.percentile_ms(50))} {_cell(row.percentile_ms(95))} "
            f"{'' if ratio is None else f'{ratio:15.3f}'}"
        )
        for reason, count in row.reasons.most_common(3):
            print(f"  {count} x {reason}")
    _print_footer(report)


def _print_footer(report: RunsReport) -> None:
    if not report.baselines:
        print("plain starts not measured: no warm-up run completed, so the stage count is unknown")
        return
    print(
        "ratio: room runs per minute over plain iterations per minute "
        f"(one iteration = {report.stages} plain starts in a row)"
    )
    pool = report.pool_figures()
    if pool is not None:
        print(
            f"worker time per run with the pool saturated: {pool.per_run_ms:.0f} ms = "
            f"{pool.in_stages_ms:.0f} ms in its {report.stages} stages (as the engine meters them) "
            f"+ {pool.per_run_ms - pool.in_stages_ms:.0f} ms outside them"
        )
        print(
            f"{report.stages} plain starts in a row at {report.workers}-way parallelism: "
            f"{pool.plain_starts_ms:.0f} ms; the run's worker time beyond them: "
            f"{pool.per_run_ms - pool.plain_starts_ms:.0f} ms"
        )


def _cell(value: float | None) -> str:
    return f"{'n/a':>9}" if value is None else f"{value:9.1f}"
