"""Sandbox runner overhead: each runner's ``run`` against starting the same sandbox directly.

For every available runner, a no-op agent runs N times through ``Runner.run``
and N times as the bare sandbox (the same image through the Docker SDK with
no options beyond ``network_mode="none"``; plain ``bwrap`` with the same
read-only /usr; a plain ``python3`` process), interleaved, after a warm-up.
The table shows mean and p50 per side and the difference: the cost the runner
adds (limits, socket mount, output capture, cleanup) beyond starting the
sandbox. The target is under 150 ms.

Runs per minute with 10 concurrent participants need the whole run pipeline;
:func:`runs_per_minute` is the hook that measures it given a callable that
performs one full run. Until the pipeline supplies one, ``--concurrency`` uses
one sandbox-only run as the callable and labels the figure accordingly.

Usage: ``python bench/rooms/run.py [-n 20] [--runners docker,bwrap,local] [--concurrency]``
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

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


# ---------------------------------------------------------------------------------------
# RUNS-PER-MINUTE HOOK: the run pipeline passes a callable performing one full run
# (submission, scope, query, mediator, signed attestation); this measures throughput
# with `participants` concurrent askers.
# ---------------------------------------------------------------------------------------
async def runs_per_minute(
    run_one: Callable[[], Awaitable[object]],
    *,
    participants: int = 10,
    duration_s: float = 60.0,
    max_runs: int = 10_000,
) -> tuple[float, int, int]:
    """Run ``run_one`` from ``participants`` concurrent tasks for ``duration_s``.

    Returns:
        (completed runs per minute, completed runs, failed runs).
    """
    done = [0, 0]
    started = time.monotonic()

    async def participant() -> None:
        while time.monotonic() - started < duration_s and sum(done) < max_runs:
            try:
                await run_one()
                done[0] += 1
            except Exception:
                done[1] += 1

    with trio.move_on_after(duration_s * 3 + 60):
        async with trio.open_nursery() as nursery:
            for _ in range(participants):
                nursery.start_soon(participant)
    elapsed = time.monotonic() - started
    return done[0] * 60.0 / elapsed, done[0], done[1]


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


async def main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="hivemind-bench-rooms-") as tmp:
        root = Path(tmp)
        agent = root / "agent"
        agent.mkdir()
        (agent / "Dockerfile").write_text(NOOP_DOCKERFILE)
        (agent / "main.py").write_text(NOOP_MAIN)
        (root / "bridge").mkdir(mode=0o700)
        socket = root / "bridge" / "bridge.sock"
        rows: dict[RunnerKind, dict[str, float]] = {}
        async with trio.open_nursery() as nursery:
            await nursery.start(_serve_socket, socket)
            chosen = _runners(args.runners.split(","))
            for runner, baseline in chosen:
                rows[runner.kind] = await _bench_one(runner, baseline, agent, socket, args.n)
            within = _print_table(rows, args.n) if rows else False
            if args.concurrency and chosen:
                runner = chosen[0][0]
                image = await runner.prepare(agent, agent_dir_digest(agent))
                one = functools.partial(
                    runner.run, image, bridge_socket=socket, limits=SandboxLimits(), stage="bench"
                )
                rate, ok, failed = await runs_per_minute(one, duration_s=args.duration)
                print(
                    f"\n{runner.kind.value}: {rate:.0f} sandbox-only runs/minute with 10 "
                    f"concurrent participants ({ok} ok, {failed} failed; no pipeline yet)"
                )
            nursery.cancel_scope.cancel()
    if not rows:
        print("no runner available")
        return 1
    return 0 if within else 2


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20, help="runs per side and runner")
    parser.add_argument("--runners", default="docker,bwrap,local")
    parser.add_argument("--concurrency", action="store_true", help="runs/minute, 10 participants")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds for --concurrency")
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    raise SystemExit(trio.run(main, parser.parse_args()))
