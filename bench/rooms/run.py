"""Room runs: each runner's overhead, and runs per minute with concurrent participants.

Part one (``overhead``). For every available runner, a no-op agent runs N
times through ``Runner.run`` and N times as the bare sandbox (the same image
through the Docker SDK with no options beyond ``network_mode="none"``; plain
``bwrap`` with the same read-only /usr; a plain ``python3`` process),
interleaved, after a warm-up. The table shows mean and p50 per side and the
difference: the cost the runner adds (limits, socket mount, output capture,
cleanup) beyond starting the sandbox. The target is under 150 ms.

Part two (``runs``, see ``room_runs.py``). A real room service in this
process, the default deterministic agents, 10 participants each with its own
invite and payer asking again and again for a fixed window: runs per minute,
p50/p95 run latency and failures, beside the same number of concurrent
tasks starting the plain sandbox (as many starts per iteration as a run has
stages), and the ratio. The engine's worker pool size is printed with it.

Usage: ``python bench/rooms/run.py [-n 20] [--runners docker,bwrap,local] [--runner bwrap]
[--duration 20] [--baseline-duration 10] [--only overhead|runs] [--quick] [--json out.json]``
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import room_runs
import trio
from hivemind_rooms.runners import (
    AgentImage,
    BwrapRunner,
    DockerRunner,
    LocalRunner,
    Runner,
    RunnerKind,
    SandboxLimits,
    agent_dir_digest,
)
from hivemind_rooms.runners.bwrap_runner import _root_layout

TARGET_OVERHEAD_MS = 150.0
NOOP_DOCKERFILE = (
    'FROM hivemind/agent-base:bookworm\nCOPY . /agent\nWORKDIR /agent\nCMD ["python3", "main.py"]\n'
)
NOOP_MAIN = "print('ok')\n"


def _stats(samples: list[float]) -> tuple[float, float]:
    return statistics.fmean(samples) * 1000, statistics.median(samples) * 1000


async def _timed(fn: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await fn()
    return time.perf_counter() - started


def _docker_baseline(image: AgentImage) -> Callable[[], Awaitable[object]]:
    import docker

    client = docker.from_env()

    def once() -> None:
        client.containers.run(image.handle, network_mode="none", remove=True)

    return functools.partial(trio.to_thread.run_sync, once)


def _bwrap_baseline(image: AgentImage) -> Callable[[], Awaitable[object]]:
    argv = [
        "bwrap",
        "--unshare-all",
        "--die-with-parent",
        *_root_layout(),
        "--ro-bind",
        str(image.agent_dir),
        "/agent",
        "--chdir",
        "/agent",
        "--",
        *image.command,
    ]
    return functools.partial(trio.run_process, argv, capture_stdout=True)


def _local_baseline(image: AgentImage) -> Callable[[], Awaitable[object]]:
    argv = [sys.executable, str(image.agent_dir / "main.py")]
    return functools.partial(trio.run_process, argv, capture_stdout=True)


def _runners(
    names: list[str],
) -> list[tuple[Runner, Callable[..., Callable[[], Awaitable[object]]]]]:
    chosen = []
    for name in names:
        if name == "docker":
            runner = DockerRunner()
            ok, detail = runner.probe()
            baseline = _docker_baseline
        elif name == "bwrap":
            runner = BwrapRunner()
            ok, detail = runner.probe()
            baseline = _bwrap_baseline
        else:
            runner = LocalRunner(allow_local=True)
            ok, detail = True, "development only"
            baseline = _local_baseline
        if ok:
            chosen.append((runner, baseline))
        else:
            print(f"skipping {name}: {detail}")
    return chosen


async def _bench_one(
    runner: Runner,
    baseline_for: Callable[[AgentImage], Callable[[], Awaitable[object]]],
    agent: Path,
    socket: Path,
    repetitions: int,
    step: Callable[[], None] = lambda: None,
) -> dict[str, float]:
    started = time.perf_counter()
    image = await runner.prepare(agent, agent_dir_digest(agent))
    prepare_s = time.perf_counter() - started
    limits = SandboxLimits(timeout_s=60)

    async def through_runner() -> None:
        outcome = await runner.run(image, bridge_socket=socket, limits=limits, stage="bench")
        if outcome.exit_code != 0 or outcome.stdout_tail.strip() != "ok":
            raise RuntimeError(f"no-op agent failed: {outcome}")

    baseline = baseline_for(image)
    for _ in range(2):
        await through_runner()
        await baseline()
    plain, ours = [], []
    for _ in range(repetitions):
        plain.append(await _timed(baseline))
        ours.append(await _timed(through_runner))
        step()
    plain_mean, plain_p50 = _stats(plain)
    ours_mean, ours_p50 = _stats(ours)
    return {
        "prepare_ms": prepare_s * 1000,
        "plain_mean": plain_mean,
        "plain_p50": plain_p50,
        "ours_mean": ours_mean,
        "ours_p50": ours_p50,
    }


def _print_table(rows: dict[RunnerKind, dict[str, float]], repetitions: int) -> bool:
    print(f"\nno-op agent, {repetitions} runs each (ms)")
    header = (
        f"{'runner':8} {'sandbox mean':>13} {'p50':>8} {'runner mean':>12} {'p50':>8} "
        f"{'overhead mean':>14} {'p50':>8}"
    )
    print(header)
    print("-" * len(header))
    within = True
    for kind, row in rows.items():
        over_mean = row["ours_mean"] - row["plain_mean"]
        over_p50 = row["ours_p50"] - row["plain_p50"]
        within &= over_p50 < TARGET_OVERHEAD_MS
        print(
            f"{kind.value:8} {row['plain_mean']:13.1f} {row['plain_p50']:8.1f} "
            f"{row['ours_mean']:12.1f} {row['ours_p50']:8.1f} {over_mean:14.1f} {over_p50:8.1f}"
        )
    print(f"target: runner overhead under {TARGET_OVERHEAD_MS:.0f} ms beyond the sandbox start")
    return within


async def _serve_socket(path: Path, task_status: trio.TaskStatus[None]) -> None:
    sock = trio.socket.socket(trio.socket.AF_UNIX)
    await sock.bind(str(path))
    sock.listen(64)

    async def handle(stream: trio.SocketStream) -> None:
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, handle, [trio.SocketListener(sock)])
        task_status.started()


def _noop_agent(root: Path) -> Path:
    agent = root / "agent"
    agent.mkdir()
    (agent / "Dockerfile").write_text(NOOP_DOCKERFILE)
    (agent / "main.py").write_text(NOOP_MAIN)
    return agent


async def _overhead(
    args: argparse.Namespace, agent: Path, socket: Path, figures: dict[str, Any]
) -> bool | None:
    """The overhead table; True when every runner is within the target, None if none ran."""
    rows: dict[RunnerKind, dict[str, float]] = {}
    chosen = _runners(args.runners.split(","))
    with room_runs.new_progress() as progress:
        for runner, baseline in chosen:
            label = f"overhead: {runner.kind.value}, {args.n} runs per side"
            task = progress.add_task(label, total=args.n, ok=0, failed=0)
            step = functools.partial(progress.update, task, advance=1)
            rows[runner.kind] = await _bench_one(runner, baseline, agent, socket, args.n, step)
            progress.update(task, ok=args.n)
    figures["overhead"] = {kind.value: row for kind, row in rows.items()}
    if not rows:
        print("overhead: no runner available")
        return None
    return _print_table(rows, args.n)


async def _runs(
    args: argparse.Namespace, root: Path, agent: Path, figures: dict[str, Any]
) -> bool | None:
    """Runs per minute; True when every run completed, None if the runner is unavailable."""
    chosen = _runners([args.runner])
    if not chosen:
        print(f"runs per minute: not measured, the {args.runner} runner is unavailable")
        return None
    runner, baseline_for = chosen[0]
    image = await runner.prepare(agent, agent_dir_digest(agent))
    plan = room_runs.LoadPlan(
        participants=args.participants,
        duration_s=args.duration,
        baseline_s=args.baseline_duration,
        max_runs=args.max_runs,
        poll_s=args.poll,
    )
    data = root / "service"
    data.mkdir(mode=0o700)
    report = await room_runs.measure_runs(data, runner.kind.value, baseline_for(image), plan)
    room_runs.print_report(report, plan)
    figures["runs"] = report.to_dict()
    failed = report.warmup.failed + report.pipeline.failed
    return report.pipeline.completed > 0 and failed == 0


async def main(args: argparse.Namespace) -> int:
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="hivemind-bench-rooms-") as tmp:
        root = Path(tmp)
        agent = _noop_agent(root)
        (root / "bridge").mkdir(mode=0o700)
        socket = root / "bridge" / "bridge.sock"
        overhead_ok = runs_ok = None
        async with trio.open_nursery() as nursery:
            await nursery.start(_serve_socket, socket)
            if args.only in (None, "overhead"):
                overhead_ok = await _overhead(args, agent, socket, figures)
            if args.only in (None, "runs"):
                runs_ok = await _runs(args, root, agent, figures)
            nursery.cancel_scope.cancel()
    if args.json:
        await trio.Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return _exit_code(overhead_ok, runs_ok)


def _exit_code(overhead_ok: bool | None, runs_ok: bool | None) -> int:
    """0 all good; 1 nothing measured or a run failed; 2 a runner missed the overhead target.

    A part that was skipped (not asked for, or its runner unavailable) is None.
    """
    if overhead_ok is None and runs_ok is None:
        return 1
    if runs_ok is False:
        return 1
    return 2 if overhead_ok is False else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20, help="runs per side and runner (overhead)")
    parser.add_argument("--runners", default="docker,bwrap,local", help="overhead runners")
    parser.add_argument(
        "--runner", default="bwrap", choices=("docker", "bwrap", "local"), help="runs runner"
    )
    parser.add_argument("--participants", type=int, default=10, help="concurrent participants")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per runs window")
    parser.add_argument(
        "--baseline-duration", type=float, default=10.0, help="seconds per plain-start window"
    )
    parser.add_argument("--max-runs", type=int, default=1000, help="most runs per window")
    parser.add_argument("--poll", type=float, default=0.2, help="run status poll interval (s)")
    parser.add_argument("--only", choices=("overhead", "runs"), default=None)
    parser.add_argument(
        "--quick", action="store_true", help="smoke size: -n 3, runs runner only, 4 s/2 s windows"
    )
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    return parser


def _arguments(argv: list[str] | None = None) -> argparse.Namespace:
    args = _parser().parse_args(argv)
    if not 1 <= args.participants <= 64 or min(args.duration, args.baseline_duration) <= 0:
        raise SystemExit("--participants must be 1..64 and the durations above 0")
    if args.max_runs < 1 or not 0.01 <= args.poll <= 5:
        raise SystemExit("--max-runs must be at least 1 and --poll within 0.01..5 s")
    if args.quick:
        args.n, args.runners = 3, args.runner
        args.duration, args.max_runs = min(args.duration, 4.0), min(args.max_runs, 200)
        args.baseline_duration = min(args.baseline_duration, 2.0)
    return args


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    raise SystemExit(trio.run(main, _arguments()))
