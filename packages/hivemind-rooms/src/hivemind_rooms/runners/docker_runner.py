"""The docker runner: agent images built locally, containers with no network and no privileges.

Theory of operation. ``prepare`` verifies the agent files against their
digest, then builds an image ``FROM`` the locally built agent base with the
Docker SDK: the build context is a tar of exactly the hashed bytes, nothing is
pulled and the build has no network. Images carry the agent digest and the
base image id as labels, which makes them a cache keyed by content.

``run`` creates a container with ``network_mode="none"`` (no interface but
loopback, so no route to the host, the internet or other runs), a read-only
root, every capability dropped, ``no-new-privileges``, an unprivileged user,
memory (swap equal to memory, so none), pids and CPU limits, a size-limited
``/tmp`` tmpfs and exactly one bind mount: the run's bridge socket at
``/run/hivemind/bridge.sock``. The only environment variable set is the
socket path. Every SDK call runs in a worker thread; the wait is bounded by
the run's timeout, after which the container is killed, and it is removed in
a ``finally`` block shielded from cancellation.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import shutil
import time
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final, TypeVar

import docker
import docker.errors
import trio
from docker.types import LogConfig, Mount

from . import base_image
from ._agentdir import build_context, check_digest, read_agent_dir
from ._dockerfile import parse_dockerfile
from ._process import TailBuffer
from ._shared import socket_for_sandbox
from ._types import (
    BRIDGE_SOCKET_ENV,
    SANDBOX_BRIDGE_SOCKET,
    SANDBOX_UID,
    AgentImage,
    RunnerError,
    RunnerKind,
    RunnerUnavailable,
    RunOutcome,
    SandboxLimits,
)

__all__ = ["LABEL_BASE", "LABEL_DIGEST", "LABEL_MANAGED", "DockerRunner"]

LABEL_MANAGED: Final = "managed-by"
LABEL_DIGEST: Final = "org.hivemind.agent.digest"
LABEL_BASE: Final = "org.hivemind.agent.base-id"
LABEL_STAGE: Final = "org.hivemind.stage"
_CLEANUP_S: Final = 30.0
_LOGS_S: Final = 15.0
_POOL_SIZE: Final = 32
_ENFORCED: Final = frozenset(
    {"memory", "pids", "cpu", "timeout", "tmpfs", "network", "filesystem", "capabilities"}
)
_SECCOMP: Final = frozenset({"seccomp"})

T = TypeVar("T")
_log = logging.getLogger(__name__)


async def _call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await trio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))


def _read_logs(container: Any, *, stdout: bool, tail: TailBuffer) -> None:
    stream = container.logs(stdout=stdout, stderr=not stdout, stream=True, follow=False)
    for chunk in stream:
        tail.feed(chunk)


class DockerRunner:
    """Runs agents in docker containers built from the local agent base image.

    Args:
        client: A ``docker.DockerClient``; by default one from the environment.
        base: The only image agents may build ``FROM``.
        build_timeout_s: Longest image build.
        build_memory_mb: Memory of the build containers.
    """

    def __init__(
        self,
        client: Any | None = None,
        *,
        base: str = base_image.BASE_IMAGE,
        build_timeout_s: float = 600,
        build_memory_mb: int = 1024,
    ) -> None:
        self._client = client
        self._base = base
        self._build_timeout_s = build_timeout_s
        self._build_memory_mb = build_memory_mb
        self._locks: dict[str, trio.Lock] = {}
        self._init: bool | None = None
        self._seccomp = False
        self._finalizer: weakref.finalize[Any, Any] | None = None

    @property
    def kind(self) -> RunnerKind:
        """Always :attr:`RunnerKind.DOCKER`."""
        return RunnerKind.DOCKER

    def _docker(self) -> Any:
        if self._client is None:
            try:
                self._client = docker.from_env(timeout=120, max_pool_size=_POOL_SIZE)
            except docker.errors.DockerException as exc:
                raise RunnerUnavailable(f"docker is not reachable: {exc}") from None
            self._finalizer = weakref.finalize(self, self._client.close)
        return self._client

    def close(self) -> None:
        """Close the docker client this runner opened (a given client is left open)."""
        if self._finalizer is not None:
            self._finalizer()

    def _use_init(self, client: Any) -> bool:
        if self._init is None:
            info = client.info()
            binary = str(info.get("InitBinary") or "docker-init")
            local = os.environ.get("DOCKER_HOST", "unix://").startswith("unix://")
            self._init = not local or shutil.which(binary) is not None
            options = info.get("SecurityOptions") or []
            self._seccomp = any(str(o).startswith("name=seccomp") for o in options)
        return self._init

    # -- prepare -------------------------------------------------------------------------

    async def prepare(self, agent_dir: Path, digest: str) -> AgentImage:
        """Verify the files and build (or reuse) the agent image for ``digest``.

        Raises:
            RunnerError: digest mismatch, a base other than the agent base, build failure.
            RunnerUnavailable: docker or the base image is missing.
        """
        files = await _call(read_agent_dir, agent_dir)
        check_digest(files, digest)
        dockerfile = parse_dockerfile(files["Dockerfile"][0].decode("utf-8", "replace"))
        if dockerfile.bases != (self._base,):
            raise RunnerError(f"agent Dockerfiles must have exactly one stage: FROM {self._base}")
        await self._ensure_base()
        lock = self._locks.setdefault(digest, trio.Lock())
        async with lock:
            with trio.fail_after(self._build_timeout_s + 30):
                image = await trio.to_thread.run_sync(
                    self._build_or_reuse, files, digest, abandon_on_cancel=True
                )
        config = image.attrs.get("Config") or {}
        command = tuple(config.get("Entrypoint") or ()) + tuple(config.get("Cmd") or ())
        if not command:
            raise RunnerError("the agent image has no command")
        env = dict(item.split("=", 1) for item in config.get("Env") or () if "=" in item)
        return AgentImage(
            digest=digest,
            agent_dir=agent_dir,
            command=command,
            runner=RunnerKind.DOCKER,
            handle=str(image.id),
            workdir=str(config.get("WorkingDir") or "/"),
            env=env,
        )

    async def _ensure_base(self) -> None:
        """Build the agent base image on first use when this machine can (minutes, once)."""

        def ensure() -> None:
            client = self._docker()
            if (
                base_image.base_image_present(client, self._base)
                or self._base != base_image.BASE_IMAGE
            ):
                return
            buildable, why = base_image.base_image_buildable()
            if not buildable:
                raise RunnerUnavailable(f"the agent base image {self._base} is missing; {why}")
            try:
                base_image.ensure_base_image(client, log=_log.warning)
            except base_image.BaseImageError as exc:
                raise RunnerUnavailable(f"the agent base image cannot be built: {exc}") from None

        with trio.fail_after(base_image.DEBOOTSTRAP_TIMEOUT_S + 600):
            await trio.to_thread.run_sync(ensure, abandon_on_cancel=True)

    def _build_or_reuse(self, files: Any, digest: str) -> Any:
        client = self._docker()
        try:
            base_id = str(client.images.get(self._base).id)
        except docker.errors.ImageNotFound:
            raise RunnerUnavailable(
                f"the agent base image {self._base} is missing: run tools/agent-base-image.sh"
            ) from None
        labels = {LABEL_MANAGED: "hivemind", LABEL_DIGEST: digest, LABEL_BASE: base_id}
        wanted = [f"{key}={value}" for key, value in labels.items()]
        cached = client.images.list(filters={"label": wanted})
        if cached:
            return cached[0]
        memory = self._build_memory_mb * 1024 * 1024
        try:
            stream = client.api.build(
                fileobj=io.BytesIO(build_context(files)),
                custom_context=True,
                tag=f"hivemind/agent:{digest[:32]}",
                rm=True,
                forcerm=True,
                pull=False,
                network_mode="none",
                labels=labels,
                container_limits={"memory": memory, "memswap": memory},
                timeout=int(self._build_timeout_s),
                decode=True,
            )
            image_id, error = _consume_build(stream)
        except docker.errors.APIError as exc:
            raise RunnerError(f"image build failed: {exc.explanation or exc}"[:500]) from None
        if error is not None or image_id is None:
            raise RunnerError(f"image build failed: {(error or 'no image produced')[:400]}")
        return client.images.get(image_id)

    # -- run -----------------------------------------------------------------------------

    def _create(self, image: AgentImage, socket: Path, limits: SandboxLimits, stage: str) -> Any:
        client = self._docker()
        memory = f"{limits.memory_mb}m"
        return client.containers.create(
            image.handle,
            entrypoint=list(image.command),
            working_dir=image.workdir,
            environment={BRIDGE_SOCKET_ENV: SANDBOX_BRIDGE_SOCKET, "HOME": "/tmp"},
            user=f"{SANDBOX_UID}:{SANDBOX_UID}",
            network_mode="none",
            read_only=True,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            ipc_mode="private",
            mem_limit=memory,
            memswap_limit=memory,
            pids_limit=limits.pids,
            nano_cpus=int(limits.cpus * 1e9),
            tmpfs={"/tmp": f"rw,nosuid,nodev,size={limits.tmpfs_mb}m,mode=1777"},
            mounts=[Mount(SANDBOX_BRIDGE_SOCKET, str(socket), type="bind", read_only=False)],
            init=self._use_init(client),
            hostname="sandbox",
            stdin_open=False,
            labels={LABEL_MANAGED: "hivemind", LABEL_DIGEST: image.digest, LABEL_STAGE: stage},
            log_config=LogConfig(type="json-file", config={"max-size": "1m", "max-file": "2"}),
        )

    async def run(
        self,
        image: AgentImage,
        *,
        bridge_socket: Path,
        limits: SandboxLimits,
        stage: str,
    ) -> RunOutcome:
        """Run the agent container once (see the module docstring for the sandbox).

        Raises:
            RunnerError: the image was not prepared by this runner or the socket is missing.
        """
        if image.runner is not RunnerKind.DOCKER or not image.handle:
            raise RunnerError("the agent image was not prepared by the docker runner")
        socket = socket_for_sandbox(bridge_socket)
        container = await _call(_api_errors, self._create, image, socket, limits, stage)
        try:
            return await self._start_and_wait(container, limits)
        except (OSError, docker.errors.DockerException) as exc:
            # The daemon failed or went away mid-run (requests errors are OSErrors).
            raise RunnerError(f"docker run failed: {type(exc).__name__}") from exc
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(_CLEANUP_S):
                await trio.to_thread.run_sync(_force_remove, container, abandon_on_cancel=True)

    async def _start_and_wait(self, container: Any, limits: SandboxLimits) -> RunOutcome:
        started = time.monotonic()
        await _call(_api_errors, container.start)
        timed_out = False
        wait_s = limits.timeout_s - (time.monotonic() - started)
        with trio.move_on_after(max(0.0, wait_s)) as scope:
            await trio.to_thread.run_sync(
                functools.partial(container.wait, timeout=limits.timeout_s + 10),
                abandon_on_cancel=True,
            )
        if scope.cancelled_caught:
            timed_out = True
            await _call(_kill_quietly, container)
            with trio.move_on_after(_CLEANUP_S):
                await _call(functools.partial(container.wait, timeout=_CLEANUP_S))
        duration = time.monotonic() - started
        await _call(container.reload)
        state = container.attrs.get("State") or {}
        stdout, stderr = TailBuffer(limits.output_bytes), TailBuffer(limits.output_bytes)
        with trio.move_on_after(_LOGS_S):
            await trio.to_thread.run_sync(
                functools.partial(_read_logs, container, stdout=True, tail=stdout),
                abandon_on_cancel=True,
            )
            await trio.to_thread.run_sync(
                functools.partial(_read_logs, container, stdout=False, tail=stderr),
                abandon_on_cancel=True,
            )
        return RunOutcome(
            exit_code=int(state.get("ExitCode", -1)),
            stdout_tail=stdout.text(),
            stderr_tail=stderr.text(),
            duration_s=duration,
            timed_out=timed_out,
            oom_killed=bool(state.get("OOMKilled")),
            runner=RunnerKind.DOCKER,
            limits_enforced=_ENFORCED | (_SECCOMP if self._seccomp else frozenset()),
            stdout_truncated=stdout.truncated,
            stderr_truncated=stderr.truncated,
        )

    async def remove_stale(self, *, include_running: bool = False) -> int:
        """Remove agent containers left behind by a crash of an earlier service process.

        Args:
            include_running: Also kill running agent containers; only safe at startup when
                no other service process shares this docker daemon.

        Returns:
            How many containers were removed.
        """

        def sweep() -> int:
            client = self._docker()
            found = client.containers.list(all=True, filters={"label": f"{LABEL_MANAGED}=hivemind"})
            stale = [c for c in found if include_running or c.status != "running"]
            for container in stale:
                _force_remove(container)
            return len(stale)

        with trio.fail_after(_CLEANUP_S * 2):
            return await trio.to_thread.run_sync(sweep, abandon_on_cancel=True)

    def probe(self) -> tuple[bool, str]:
        """Whether the daemon answers, and whether the agent base image is present."""
        try:
            client = self._docker()
            client.ping()
            version = client.version().get("Version", "?")
        except Exception as exc:
            return False, f"docker daemon not reachable ({type(exc).__name__})"
        if base_image.base_image_present(client, self._base):
            return True, f"docker {version}; base image {self._base}"
        buildable, why = base_image.base_image_buildable()
        if self._base != base_image.BASE_IMAGE:
            buildable, why = False, "it is not built by this service"
        return buildable, f"docker {version}; base image {self._base} missing: {why}"


def _consume_build(stream: Iterable[dict[str, Any]]) -> tuple[str | None, str | None]:
    """Read a whole build progress stream (so its connection is released): (image id, error)."""
    image_id: str | None = None
    error: str | None = None
    for message in stream:
        if message.get("error"):
            error = error or str(message["error"])
        aux = message.get("aux")
        if isinstance(aux, dict) and aux.get("ID"):
            image_id = str(aux["ID"])
        line = str(message.get("stream") or "")
        if image_id is None and line.startswith("Successfully built "):
            image_id = line.split()[-1]
    return image_id, error


def _api_errors(fn: Callable[..., T], *args: Any) -> T:
    """Call ``fn``; a daemon refusal becomes :class:`RunnerError` (the caller fails the run)."""
    try:
        return fn(*args)
    except docker.errors.APIError as exc:
        raise RunnerError(f"docker refused the sandbox: {exc.explanation or exc}"[:500]) from None


def _kill_quietly(container: Any) -> None:
    with contextlib.suppress(docker.errors.APIError):
        container.kill()


def _force_remove(container: Any) -> None:
    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        if getattr(exc, "status_code", None) != 409:
            raise
