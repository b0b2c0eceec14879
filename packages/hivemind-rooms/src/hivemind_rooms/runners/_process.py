"""Run one sandbox process with bounded output, a hard deadline and group kill.

Theory of operation. The process starts in its own session (process group)
through ``trio.run_process`` inside a nursery, so its stdout and stderr are
read concurrently into tail buffers that never hold more than a fixed number
of bytes. When the deadline passes, or the caller is cancelled, the whole
process group is sent SIGKILL (bwrap's ``--die-with-parent`` then takes the
sandbox's pid namespace down with it). The wait after a kill is itself
bounded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from typing import Final, final

import trio

__all__ = ["ProcessResult", "TailBuffer", "run_bounded"]

_READ_CHUNK: Final = 65536
_REAP_GRACE_S: Final = 5.0


class TailBuffer:
    """Keeps the last ``limit`` bytes written to it."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._data = bytearray()
        self.total = 0

    def feed(self, chunk: bytes) -> None:
        """Append ``chunk`` and drop what no longer fits."""
        self.total += len(chunk)
        self._data += chunk
        if len(self._data) > 2 * self._limit:
            del self._data[: len(self._data) - self._limit]

    @property
    def truncated(self) -> bool:
        """True when more bytes were fed than the tail holds."""
        return self.total > self._limit

    def text(self) -> str:
        """The tail, decoded as UTF-8 with replacement characters."""
        return bytes(self._data[-self._limit :]).decode("utf-8", "replace")


@final
@dataclasses.dataclass(frozen=True)
class ProcessResult:
    """Exit status, output tails and timing of one bounded process run."""

    exit_code: int
    stdout: TailBuffer
    stderr: TailBuffer
    duration_s: float
    timed_out: bool


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


async def _drain(stream: trio.abc.ReceiveStream | None, tail: TailBuffer) -> None:
    if stream is None:
        return
    while chunk := await stream.receive_some(_READ_CHUNK):
        tail.feed(chunk)


def _exit_code(returncode: int | None) -> int:
    if returncode is None:
        return -int(signal.SIGKILL)
    return returncode


async def run_bounded(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str | None,
    timeout_s: float,
    tail_bytes: int,
    pass_fds: Sequence[int] = (),
) -> ProcessResult:
    """Run ``argv`` with a deadline; the process group is killed on timeout or cancellation.

    Args:
        argv: The command.
        env: Its complete environment.
        cwd: Its working directory.
        timeout_s: Wall-clock limit.
        tail_bytes: Bytes of stdout and stderr kept.
        pass_fds: Extra file descriptors the process inherits.

    Returns:
        The result; ``timed_out`` when the deadline killed it.
    """
    stdout, stderr = TailBuffer(tail_bytes), TailBuffer(tail_bytes)
    drains_left = [2]
    drained = trio.Event()

    async def drain(stream: trio.abc.ReceiveStream | None, tail: TailBuffer) -> None:
        await _drain(stream, tail)
        drains_left[0] -= 1
        if not drains_left[0]:
            drained.set()

    async def kill(process: trio.Process) -> None:
        _kill_group(process.pid)
        with trio.move_on_after(_REAP_GRACE_S):
            await process.wait()

    started = time.monotonic()
    process: trio.Process | None = None
    try:
        async with trio.open_nursery() as nursery:
            process = await nursery.start(
                functools.partial(
                    trio.run_process,
                    list(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=dict(env),
                    cwd=cwd,
                    check=False,
                    start_new_session=True,
                    pass_fds=tuple(pass_fds),
                    deliver_cancel=kill,
                )
            )
            assert process is not None
            nursery.start_soon(drain, process.stdout, stdout)
            nursery.start_soon(drain, process.stderr, stderr)
            with trio.move_on_after(timeout_s):
                await process.wait()
            timed_out = process.returncode is None
            # Leftover members of the group (or the whole sandbox on timeout) go now;
            # a descendant that still holds a pipe cannot stall the drains for long.
            await kill(process)
            with trio.move_on_after(_REAP_GRACE_S):
                await drained.wait()
            nursery.cancel_scope.cancel()
    finally:
        if process is not None and process.returncode is None:
            _kill_group(process.pid)
    duration = time.monotonic() - started
    code = _exit_code(process.returncode if process is not None else None)
    return ProcessResult(code, stdout, stderr, duration, timed_out)
