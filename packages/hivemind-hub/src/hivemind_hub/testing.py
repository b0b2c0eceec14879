"""Test support shipped with the package: a real, throw-away ``redis-server``.

Used by this package's tests and by anyone testing code on top of the Redis
client store. It starts the real server binary on 127.0.0.1 with a free port,
no persistence, and stops it on exit.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

__all__ = ["RedisServer", "find_redis_server", "running_redis_server"]

_START_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class RedisServer:
    """A running throw-away server."""

    host: str
    port: int

    @property
    def options(self) -> dict[str, object]:
        """Options for ``RedisClientStore`` pointing at this server."""
        return {"host": self.host, "port": self.port}


def find_redis_server() -> str | None:
    """Return the path of the ``redis-server`` binary, or None."""
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_redis_server(binary: str | None = None) -> Iterator[RedisServer]:
    """Run ``redis-server`` on 127.0.0.1 for the duration of the block.

    Args:
        binary: The server binary (defaults to :func:`find_redis_server`).

    Yields:
        The server's address.

    Raises:
        FileNotFoundError: No ``redis-server`` binary is installed.
        TimeoutError: The server did not answer PING within 10 seconds.
    """
    exe = binary or find_redis_server()
    if exe is None:
        raise FileNotFoundError("redis-server is not installed")
    port = _free_port()
    args = [exe, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_ready(port, proc)
        yield RedisServer("127.0.0.1", port)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1, socket_connect_timeout=1)
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with code {proc.returncode}")
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise TimeoutError("redis-server did not start within 10 seconds")
    finally:
        client.close()
