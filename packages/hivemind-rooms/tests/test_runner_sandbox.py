"""Real sandboxes: a tiny agent talks to a bridge socket; escape attempts fail safely.

The agent asks the test's bridge (a line protocol on the unix socket) what to
do, so no instruction travels through the environment. Each runner that is
unavailable on this machine is skipped, except under ``CI=true`` where it
fails. The docker tests build the agent base image on first use.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
from hivemind_rooms.runners import (
    SANDBOX_BRIDGE_SOCKET,
    AgentImage,
    BwrapRunner,
    DockerRunner,
    LocalRunner,
    Runner,
    RunnerError,
    RunnerKind,
    RunnerUnavailable,
    RunOutcome,
    SandboxLimits,
    agent_dir_digest,
    base_image,
)

pytestmark = pytest.mark.slow

CANARY = "canary-secret-7f3a9d"
THIS_FILE = str(Path(__file__).resolve())

AGENT_MAIN = r"""
import json, os, socket, sys, time

def ask(line):
    path = os.environ.get("HIVEMIND_BRIDGE_SOCKET", "/run/hivemind/bridge.sock")
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(line.encode() + b"\n")
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return json.loads(data) if data.strip() else {}

def probe_net(cmd):
    results = {}
    for host, port in cmd["targets"]:
        try:
            socket.create_connection((host, port), timeout=2).close()
            results[f"{host}:{port}"] = "connected"
        except OSError as exc:
            results[f"{host}:{port}"] = type(exc).__name__
    return results

def probe_files(paths, mode):
    results = {}
    for path in paths:
        try:
            with open(path, mode) as handle:
                handle.read(1) if mode == "rb" else handle.write(b"x")
            results[path] = "ok"
        except OSError as exc:
            results[path] = type(exc).__name__
    return results

def memory(cmd):
    blocks = []
    for i in range(cmd["mb"] // 16):
        blocks.append(b"\x01" * (16 * 1024 * 1024))
        print(f"allocated {16 * (i + 1)} MiB", file=sys.stderr, flush=True)
    return {"allocated_mb": 16 * len(blocks)}

def forks(cmd):
    made = 0
    for _ in range(cmd["n"]):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            time.sleep(20)
            os._exit(0)
        made += 1
    return {"forked": made}

def proc_environs():
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/environ", "rb") as handle:
                    found.append(handle.read().decode(errors="replace"))
            except OSError:
                pass
    return found

def run_thread():
    import threading
    seen = []
    worker = threading.Thread(target=lambda: seen.append(1))
    worker.start()
    worker.join()
    return len(seen)

def main():
    cmd = ask("hello")
    op = cmd.get("op")
    if op == "echo":
        result = {"got": cmd["text"], "uid": os.getuid()}
    elif op == "net":
        result = probe_net(cmd)
    elif op == "read":
        result = probe_files(cmd["paths"], "rb")
    elif op == "write":
        result = probe_files(cmd["paths"], "wb")
    elif op == "memory":
        result = memory(cmd)
    elif op == "fork":
        result = forks(cmd)
    elif op == "sleep":
        time.sleep(cmd["s"])
        ask("late")
        result = {"slept": True}
    elif op == "env":
        result = {"env": dict(os.environ), "proc": proc_environs()}
    elif op == "status":
        with open("/proc/self/status") as handle:
            lines = handle.read().splitlines()
        result = dict(line.split(":\t", 1) for line in lines if ":\t" in line)
    elif op == "syscalls":
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        result = {
            "unshare_user": libc.unshare(0x10000000),
            "unshare_net": libc.unshare(0x40000000),
            "thread": run_thread(),
        }
    elif op == "spam":
        sys.stdout.write("x" * cmd["n"] + "\n")
        result = {}
    else:
        result = {"unknown": op}
    print(json.dumps(result), flush=True)

main()
"""

DOCKERFILE = """FROM hivemind/agent-base:bookworm
COPY . /agent
WORKDIR /agent
CMD ["python3", "main.py"]
"""


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: every sandbox runner must work)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def docker_ready(request: pytest.FixtureRequest) -> None:
    """The docker daemon answers and the agent base image exists (built on demand)."""
    try:
        import docker

        client = docker.from_env(timeout=600)
        client.ping()
    except Exception as exc:
        _unavailable(f"docker daemon not reachable: {type(exc).__name__}")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    try:
        if not base_image.base_image_present(client):
            with capture.global_and_fixture_disabled():
                print(
                    f"\n[runner tests] building {base_image.BASE_IMAGE} with debootstrap "
                    "(first run only, a few minutes)...",
                    flush=True,
                )
                base_image.ensure_base_image(
                    client, log=lambda line: print(f"[runner tests] {line}", flush=True)
                )
    except base_image.BaseImageError as exc:
        _unavailable(f"cannot build the agent base image: {exc}")
    finally:
        client.close()


@pytest.fixture(scope="session")
def bwrap_ready() -> None:
    ok, detail = BwrapRunner().probe()
    if not ok:
        _unavailable(detail)


def _make_runner(kind: str, request: pytest.FixtureRequest) -> Runner:
    if kind == "docker":
        request.getfixturevalue("docker_ready")
        return DockerRunner()
    if kind == "bwrap":
        request.getfixturevalue("bwrap_ready")
        return BwrapRunner()
    return LocalRunner(allow_local=True)


class Bridge:
    """A line-protocol stand-in for the per-run bridge: answers each line with a command."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.command: dict[str, Any] = {}
        self.received: list[str] = []
        self.first = trio.Event()

    async def handle(self, stream: trio.SocketStream) -> None:
        async with stream:
            data = b""
            with trio.move_on_after(10):
                while not data.endswith(b"\n") and len(data) < 4096:
                    chunk = await stream.receive_some(4096)
                    if not chunk:
                        break
                    data += chunk
            self.received.append(data.decode(errors="replace").strip())
            self.first.set()
            await stream.send_all(json.dumps(self.command).encode() + b"\n")


@pytest.fixture
async def bridge(tmp_path: Path) -> AsyncIterator[Bridge]:
    directory = tmp_path / "bridge"
    directory.mkdir(mode=0o700)
    path = directory / "b.sock"
    sock = trio.socket.socket(trio.socket.AF_UNIX)
    await sock.bind(str(path))
    sock.listen(16)
    served = Bridge(path)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, served.handle, [trio.SocketListener(sock)])
        yield served
        nursery.cancel_scope.cancel()


@pytest.fixture
def agent_dir(tmp_path: Path) -> Path:
    root = tmp_path / "agent"
    root.mkdir()
    (root / "Dockerfile").write_text(DOCKERFILE)
    (root / "main.py").write_text(AGENT_MAIN)
    return root


async def _run(
    runner: Runner, image: AgentImage, bridge: Bridge, command: dict[str, Any], **limits: Any
) -> tuple[RunOutcome, dict[str, Any]]:
    bridge.command = command
    outcome = await runner.run(
        image,
        bridge_socket=bridge.path,
        limits=SandboxLimits(**{"timeout_s": 60, **limits}),
        stage="test",
    )
    lines = [line for line in outcome.stdout_tail.splitlines() if line.startswith("{")]
    return outcome, (json.loads(lines[-1]) if lines else {})


ALL = ["docker", "bwrap", "local"]
SANDBOXES = ["docker", "bwrap"]


@pytest.mark.parametrize("kind", ALL)
async def test_agent_talks_to_the_bridge_socket(
    kind: str, request: pytest.FixtureRequest, agent_dir: Path, bridge: Bridge
) -> None:
    runner = _make_runner(kind, request)
    image = await runner.prepare(agent_dir, agent_dir_digest(agent_dir))
    outcome, result = await _run(runner, image, bridge, {"op": "echo", "text": "ping-42"})
    assert outcome.exit_code == 0, outcome.stderr_tail
    assert outcome.ok
    assert outcome.runner is RunnerKind(kind)
    assert result["got"] == "ping-42"
    assert bridge.received == ["hello"]
    if kind != "local":
        assert result["uid"] == 65534
        assert {"memory", "pids", "network", "filesystem", "timeout"} <= outcome.limits_enforced


@pytest.mark.parametrize("kind", SANDBOXES)
async def test_no_network(
    kind: str, request: pytest.FixtureRequest, agent_dir: Path, bridge: Bridge
) -> None:
    runner = _make_runner(kind, request)
    image = await runner.prepare(agent_dir, agent_dir_digest(agent_dir))
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    targets = [["127.0.0.1", port], ["1.1.1.1", 53], ["10.0.0.1", 80], ["::1", port]]
    with listener:
        outcome, result = await _run(runner, image, bridge, {"op": "net", "targets": targets})
    assert outcome.exit_code == 0, outcome.stderr_tail
    assert len(result) == len(targets)
    assert "connected" not in result.values()


@pytest.mark.parametrize("kind", SANDBOXES)
async def test_host_filesystem_is_out_of_reach(
    kind: str, request: pytest.FixtureRequest, agent_dir: Path, bridge: Bridge
) -> None:
    runner = _make_runner(kind, request)
    image = await runner.prepare(agent_dir, agent_dir_digest(agent_dir))
    secret = THIS_FILE
    reads = ["/etc/shadow", secret, str(agent_dir / "main.py")]
    _, read = await _run(runner, image, bridge, {"op": "read", "paths": reads})
    assert read["/etc/shadow"] != "ok"
    assert read[secret] != "ok"
    assert read[str(agent_dir / "main.py")] != "ok"
    writes = ["/agent/main.py", "/agent/new", "/etc/new", "/usr/new", "/new", "/run/hivemind/x"]
    _, wrote = await _run(runner, image, bridge, {"op": "write", "paths": [*writes, "/tmp/ok"]})
    assert wrote.pop("/tmp/ok") == "ok"
    assert set(wrote) == set(writes)
    assert "ok" not in wrote.values()


@pytest.mark.parametrize("kind", SANDBOXES)
async def test_memory_limit_kills(
    kind: str, request: pytest.FixtureRequest, agent_dir: Path, bridge: Bridge
) -> None:
    runner = _make_runner(kind, request)
    image = await runner.prepare(agent_dir, agent_dir_digest(agent_dir))
    outcome, result = await _run(runner, image, bridge, {"op": "memory", "mb": 512}, memory_mb=64)
    assert outcome.exit_code != 0
    assert result == {}
    assert "allocated 16 MiB" in outcome.stderr_tail
    assert "allocated 128 MiB" not in outcome.stderr_tail
    assert not outcome.timed_out
    if "memory" in outcome.limits_enforced:
        assert outcome.oom_killed


@pytest.mark.parametrize("kind", SANDBOXES)
async def test_fork_bomb_is_bounded_by_pids(
    kind: str, request: pytest.FixtureRequest, agent_dir: Path, bridge: Bridge
) -> None:
    runner = _make_runner(kind, request)
    image = await runner.prepare(agent_dir, agent_dir_digest(agent_dir))
    outcome, result = await _run(runner, image, bridge, {"op": "fork", "n": 300}, pids=24)
    assert outcome.exit_code == 0, outcome.stderr_tail
    assert 0 < result["forked"] < 24
    assert outcome.duration_s < 15


@pytest.mark.parametrize("kind", ALL)
async def test_timeout_kills_the_agent(
    kind: str, request: pytest.FixtureRequest, agent_dir: Path, bridge: Bridge
) -> None:
    runner = _make_runner(kind, request)
    image = await runner.prepare(agent_dir, agent_dir_digest(agent_dir))
    with trio.fail_after(30):
        outcome, result = await _run(runner, image, bridge, {"op": "sleep", "s": 3}, timeout_s=1)
    assert outcome.timed_out
    assert not outcome.ok
    assert result == {}
    assert outcome.duration_s < 10
    await trio.sleep(3.5)
    assert "late" not in bridge.received


@pytest.mark.parametrize("kind", ALL)
async def test_cancellation_kills_and_removes_the_sandbox(
    kind: str, request: pytest.FixtureRequest, agent_dir: Path, bridge: Bridge
) -> None:
    runner = _make_runner(kind, request)
    image = await runner.prepare(agent_dir, agent_dir_digest(agent_dir))
    bridge.command = {"op": "sleep", "s": 3}
    finished = []

    async def run_once() -> None:
        await runner.run(
            image, bridge_socket=bridge.path, limits=SandboxLimits(timeout_s=60), stage="cancel"
        )
        finished.append(True)

    with trio.fail_after(40):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_once)
            await bridge.first.wait()
            nursery.cancel_scope.cancel()
    assert finished == []
    assert bridge.received == ["hello"]
    await trio.sleep(3.5)
    assert "late" not in bridge.received
    if kind == "docker":
        import docker

        client = docker.from_env()
        try:
            left = client.containers.list(
                all=True, filters={"label": f"org.hivemind.agent.digest={image.digest}"}
            )
        finally:
            client.close()
        assert left == []


@pytest.mark.parametrize("kind", SANDBOXES)
async def test_environment_holds_no_inputs(
    kind: str,
    request: pytest.FixtureRequest,
    agent_dir: Path,
    bridge: Bridge,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HIVEMIND_TEST_CANARY", CANARY)
    runner = _make_runner(kind, request)
    image = await runner.prepare(agent_dir, agent_dir_digest(agent_dir))
    outcome, result = await _run(runner, image, bridge, {"op": "env"})
    assert outcome.exit_code == 0, outcome.stderr_tail
    env = result["env"]
    assert result["proc"], "the agent sees at least its own process"
    assert CANARY not in json.dumps(result["proc"])
    assert env["HIVEMIND_BRIDGE_SOCKET"] == SANDBOX_BRIDGE_SOCKET
    allowed = {"PATH", "HOME", "LANG", "PYTHONDONTWRITEBYTECODE", "HOSTNAME", "PWD"}
    assert set(env) - allowed == {"HIVEMIND_BRIDGE_SOCKET"}
    assert CANARY not in json.dumps(env)


@pytest.mark.parametrize("kind", SANDBOXES)
async def test_no_capabilities_and_no_new_privileges(
    kind: str, request: pytest.FixtureRequest, agent_dir: Path, bridge: Bridge
) -> None:
    runner = _make_runner(kind, request)
    image = await runner.prepare(agent_dir, agent_dir_digest(agent_dir))
    outcome, status = await _run(runner, image, bridge, {"op": "status"})
    assert outcome.exit_code == 0, outcome.stderr_tail
    for name in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(status[name].strip(), 16) == 0, name
    assert status["NoNewPrivs"].strip() == "1"
    assert status["Uid"].split()[:2] == ["65534", "65534"]
    if platform.machine() == "x86_64":
        assert "seccomp" in outcome.limits_enforced
    if "seccomp" in outcome.limits_enforced:
        assert status["Seccomp"].strip() == "2"


@pytest.mark.parametrize("kind", SANDBOXES)
async def test_no_new_namespaces_inside(
    kind: str, request: pytest.FixtureRequest, agent_dir: Path, bridge: Bridge
) -> None:
    runner = _make_runner(kind, request)
    image = await runner.prepare(agent_dir, agent_dir_digest(agent_dir))
    outcome, result = await _run(runner, image, bridge, {"op": "syscalls"})
    assert outcome.exit_code == 0, outcome.stderr_tail
    assert result == {"unshare_user": -1, "unshare_net": -1, "thread": 1}


@pytest.mark.parametrize("kind", ALL)
async def test_output_is_bounded(
    kind: str, request: pytest.FixtureRequest, agent_dir: Path, bridge: Bridge
) -> None:
    runner = _make_runner(kind, request)
    image = await runner.prepare(agent_dir, agent_dir_digest(agent_dir))
    outcome, result = await _run(
        runner, image, bridge, {"op": "spam", "n": 3_000_000}, output_bytes=4096
    )
    assert outcome.exit_code == 0, outcome.stderr_tail
    assert outcome.stdout_truncated
    assert len(outcome.stdout_tail.encode()) <= 4096
    assert result == {}
    assert outcome.stdout_tail.endswith("x\n{}\n")


async def test_docker_image_is_cached_by_digest(
    request: pytest.FixtureRequest, agent_dir: Path
) -> None:
    runner = _make_runner("docker", request)
    digest = agent_dir_digest(agent_dir)
    first = await runner.prepare(agent_dir, digest)
    second = await DockerRunner().prepare(agent_dir, digest)
    assert first.handle == second.handle
    assert first.command == ("python3", "main.py")
    (agent_dir / "main.py").write_text(AGENT_MAIN + "\n# changed\n")
    third = await runner.prepare(agent_dir, agent_dir_digest(agent_dir))
    assert third.handle != first.handle


async def test_bwrap_rlimit_fallback_still_bounds_memory(
    request: pytest.FixtureRequest, agent_dir: Path, bridge: Bridge
) -> None:
    request.getfixturevalue("bwrap_ready")
    runner = BwrapRunner(use_cgroups=False)
    image = await runner.prepare(agent_dir, agent_dir_digest(agent_dir))
    outcome, result = await _run(runner, image, bridge, {"op": "memory", "mb": 512}, memory_mb=96)
    assert "memory-address-space" in outcome.limits_enforced
    assert "memory" not in outcome.limits_enforced
    assert outcome.exit_code != 0
    assert result == {}


def test_bwrap_is_installed_where_expected() -> None:
    if shutil.which("bwrap") is None:
        _unavailable("bwrap is not installed")
    assert BwrapRunner().kind is RunnerKind.BWRAP


@pytest.mark.parametrize(
    "step",
    [
        "RUN false",
        'RUN ["python3", "-c", "import socket; socket.create_connection(('
        "'1.1.1.1', 53), timeout=2)\"]",
    ],
)
async def test_docker_build_failures_and_no_build_network(
    request: pytest.FixtureRequest, agent_dir: Path, step: str
) -> None:
    runner = _make_runner("docker", request)
    (agent_dir / "Dockerfile").write_text(DOCKERFILE + step + "\n")
    with pytest.raises(RunnerError, match="image build failed"):
        await runner.prepare(agent_dir, agent_dir_digest(agent_dir))


async def test_docker_stale_containers_are_removed(
    request: pytest.FixtureRequest, agent_dir: Path
) -> None:
    import docker

    runner = _make_runner("docker", request)
    image = await runner.prepare(agent_dir, agent_dir_digest(agent_dir))
    client = docker.from_env()
    try:
        leftover = client.containers.create(
            image.handle, labels={"managed-by": "hivemind", "org.hivemind.stage": "stale"}
        )
        assert await runner.remove_stale() >= 1
        with pytest.raises(docker.errors.NotFound):
            client.containers.get(leftover.id)
    finally:
        client.close()


@pytest.mark.parametrize("kind", ALL)
def test_runners_satisfy_the_protocol(kind: str, request: pytest.FixtureRequest) -> None:
    runner = _make_runner(kind, request)
    assert isinstance(runner, Runner)
    assert runner.kind is RunnerKind(kind)


async def test_docker_missing_custom_base_is_unavailable(
    request: pytest.FixtureRequest, agent_dir: Path
) -> None:
    request.getfixturevalue("docker_ready")
    missing = "hivemind/agent-base:does-not-exist"
    runner = DockerRunner(base=missing)
    ok, detail = runner.probe()
    assert not ok
    assert "missing" in detail
    (agent_dir / "Dockerfile").write_text(DOCKERFILE.replace(base_image.BASE_IMAGE, missing))
    with pytest.raises(RunnerUnavailable, match="missing"):
        await runner.prepare(agent_dir, agent_dir_digest(agent_dir))
    runner.close()
