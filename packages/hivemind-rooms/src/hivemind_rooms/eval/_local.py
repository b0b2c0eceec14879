"""A room service on loopback in a background thread, for evals without a deployment."""

from __future__ import annotations

import contextlib
import functools
import queue
import threading
from collections.abc import Iterator

import trio

from ..settings import Settings

__all__ = ["local_service"]


@contextlib.contextmanager
def local_service(settings: Settings, *, start_timeout: float = 60.0) -> Iterator[str]:
    """Serve ``settings`` (use port 0) with hypercorn until the block exits.

    The run engine is the default one, configured from ``HIVEMIND_*``
    variables (``HIVEMIND_RUNNER``, ``HIVEMIND_ALLOW_LOCAL_RUNNER``).

    Yields:
        The base URL.
    """
    from .._serve import serve_rooms

    urls: queue.Queue[object] = queue.Queue(maxsize=1)
    stop = threading.Event()

    async def main() -> None:
        async def shutdown() -> None:
            await trio.to_thread.run_sync(stop.wait, abandon_on_cancel=True)

        async with trio.open_nursery() as nursery:
            bound = await nursery.start(
                functools.partial(serve_rooms, settings, shutdown_trigger=shutdown)
            )
            urls.put(bound[0])

    def thread_main() -> None:
        try:
            trio.run(main)
        except BaseException as exc:  # reported to the waiting caller
            with contextlib.suppress(queue.Full):
                urls.put_nowait(exc)

    thread = threading.Thread(target=thread_main, name="hivemind-eval-service", daemon=True)
    thread.start()
    try:
        first = urls.get(timeout=start_timeout)
        if isinstance(first, BaseException):
            raise RuntimeError(f"the local room service did not start: {first!r}")
        yield str(first)
    finally:
        stop.set()
        thread.join(timeout=30)
