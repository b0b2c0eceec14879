"""Runner pieces that need no sandbox: Dockerfile reading, digests, limits, selection."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio
from hivemind_rooms.agents_registry import files_digest
from hivemind_rooms.runners import (
    AgentImage,
    BwrapRunner,
    DockerRunner,
    LocalRunner,
    Runner,
    RunnerError,
    RunnerKind,
    RunnerUnavailable,
    SandboxLimits,
    agent_dir_digest,
    available_runners,
    select_runner,
)
from hivemind_rooms.runners._agentdir import build_context, read_agent_dir
from hivemind_rooms.runners._dockerfile import parse_dockerfile
from hivemind_rooms.runners._process import TailBuffer, run_bounded
from hivemind_rooms.runners.base_image import BaseImageError, apt_mirror

BASE = "FROM hivemind/agent-base:bookworm\n"


def _agent(
    tmp_path: Path, dockerfile: str = BASE + 'COPY . /agent\nCMD ["python3", "/agent/m.py"]\n'
) -> Path:
    root = tmp_path / "agent"
    root.mkdir()
    (root / "Dockerfile").write_text(dockerfile)
    (root / "m.py").write_text("print('hi')\n")
    (root / "pkg").mkdir()
    (root / "pkg" / "x.bin").write_bytes(b"\x00\xff")
    return root


# -- Dockerfile ------------------------------------------------------------------------


def test_exec_form_cmd_and_workdir() -> None:
    parsed = parse_dockerfile(BASE + 'WORKDIR /agent\nCOPY . .\nCMD ["python3", "main.py"]\n')
    assert parsed.command == ("python3", "main.py")
    assert parsed.workdir == "/agent"
    assert parsed.copy_targets == ("/agent",)
    assert parsed.bases == ("hivemind/agent-base:bookworm",)


def test_shell_form_and_entrypoint_with_cmd() -> None:
    shell = parse_dockerfile(BASE + "CMD python3 main.py --x\n")
    assert shell.command == ("/bin/sh", "-c", "python3 main.py --x")
    both = parse_dockerfile(BASE + 'ENTRYPOINT ["python3"]\nCMD ["-u", "m.py"]\n')
    assert both.command == ("python3", "-u", "m.py")
    shell_entry = parse_dockerfile(BASE + 'ENTRYPOINT python3 m.py\nCMD ["ignored"]\n')
    assert shell_entry.command == ("/bin/sh", "-c", "python3 m.py")


def test_continuations_comments_and_env_forms() -> None:
    parsed = parse_dockerfile(
        BASE + "# a comment\nENV A=1 \\\n    B=two\nENV LEGACY some value\n"
        'CMD ["python3", \\\n "m.py"]\n'
    )
    assert parsed.env == (("A", "1"), ("B", "two"), ("LEGACY", "some value"))
    assert parsed.command == ("python3", "m.py")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('CMD ["python3"]\n', "no FROM"),
        (BASE, "no command"),
        (BASE + "#" * 70000 + '\nCMD ["x"]\n', "too large"),
    ],
)
def test_unusable_dockerfiles(text: str, message: str) -> None:
    with pytest.raises(RunnerError, match=message):
        parse_dockerfile(text)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("RUN echo x\n", "RUN"),
        ("COPY . /app\n", "only supports COPY"),
        ("WORKDIR /srv\n", "WORKDIR"),
        ("ENV A=$HOME\n", "expand"),
    ],
)
def test_process_runner_subset_refusals(extra: str, message: str) -> None:
    parsed = parse_dockerfile(BASE + extra + 'CMD ["python3"]\n')
    with pytest.raises(RunnerError, match=message):
        parsed.check_simple_subset()


def test_simple_subset_accepts_the_agent_layout() -> None:
    parse_dockerfile(
        BASE + "LABEL a=b\nARG X=1\nUSER 1000\nCOPY . /agent\nCOPY m.py /agent/lib/\n"
        'WORKDIR /agent\nENV PYTHONPATH=/agent/lib\nCMD ["python3", "m.py"]\n'
    ).check_simple_subset()


# -- agent directories and digests -----------------------------------------------------


def test_directory_digest_equals_registry_digest(tmp_path: Path) -> None:
    root = _agent(tmp_path)
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"junk")
    expected = files_digest(
        [
            ("__pycache__/m.cpython-311.pyc", b"junk"),
            ("Dockerfile", (root / "Dockerfile").read_bytes()),
            ("m.py", b"print('hi')\n"),
            ("pkg/x.bin", b"\x00\xff"),
        ]
    )
    assert agent_dir_digest(root) == expected


def test_links_and_missing_dockerfile_are_refused(tmp_path: Path) -> None:
    root = _agent(tmp_path)
    os.symlink("/etc/hostname", root / "link")
    with pytest.raises(RunnerError, match="link"):
        read_agent_dir(root)
    (root / "link").unlink()
    (root / "Dockerfile").unlink()
    with pytest.raises(RunnerError, match="Dockerfile"):
        read_agent_dir(root)


def test_build_context_holds_exactly_the_files(tmp_path: Path) -> None:
    import io
    import tarfile

    files = read_agent_dir(_agent(tmp_path))
    with tarfile.open(fileobj=io.BytesIO(build_context(files))) as tar:
        names = sorted(tar.getnames())
        assert tar.extractfile("pkg/x.bin").read() == b"\x00\xff"
    assert names == ["Dockerfile", "m.py", "pkg/x.bin"]


@pytest.mark.parametrize("runner_kind", ["docker", "bwrap", "local"])
async def test_prepare_refuses_a_digest_mismatch(tmp_path: Path, runner_kind: str) -> None:
    root = _agent(tmp_path)
    runner: Runner = {
        "docker": DockerRunner,
        "bwrap": BwrapRunner,
        "local": lambda: LocalRunner(allow_local=True),
    }[runner_kind]()
    good = agent_dir_digest(root)
    (root / "m.py").write_text("print('changed')\n")
    with pytest.raises(RunnerError, match="digest"):
        await runner.prepare(root, good)


async def test_process_runner_snapshot_is_private_and_read_only(tmp_path: Path) -> None:
    root = _agent(tmp_path)
    runner = BwrapRunner(snapshot_dir=tmp_path / "snapshots")
    image = await runner.prepare(root, agent_dir_digest(root))
    assert image.command == ("python3", "/agent/m.py")
    assert image.runner is RunnerKind.BWRAP
    (root / "m.py").write_text("print('tampered')\n")
    assert (image.agent_dir / "m.py").read_text() == "print('hi')\n"
    assert not os.access(image.agent_dir / "m.py", os.W_OK) or os.geteuid() == 0
    assert (image.agent_dir.stat().st_mode & 0o222) == 0


@pytest.mark.parametrize(
    "base", ["FROM debian:bookworm\n", BASE + "FROM hivemind/agent-base:bookworm\n"]
)
async def test_only_the_agent_base_is_accepted(tmp_path: Path, base: str) -> None:
    root = _agent(tmp_path, base + 'CMD ["python3"]\n')
    for runner in (BwrapRunner(), DockerRunner()):
        with pytest.raises(RunnerError, match="FROM hivemind/agent-base:bookworm"):
            await runner.prepare(root, agent_dir_digest(root))


# -- limits, outcome, selection ----------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"memory_mb": 8},
        {"pids": 1},
        {"cpus": 0},
        {"timeout_s": 0},
        {"tmpfs_mb": 0},
        {"output_bytes": 10},
    ],
)
def test_limits_are_validated(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        SandboxLimits(**bad)


def test_limits_defaults_and_frozen() -> None:
    limits = SandboxLimits()
    assert (limits.memory_mb, limits.pids, limits.cpus, limits.timeout_s, limits.tmpfs_mb) == (
        256,
        64,
        1.0,
        60,
        64,
    )
    with pytest.raises(AttributeError):
        limits.memory_mb = 1  # type: ignore[misc]


def test_agent_image_needs_a_command(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        AgentImage(digest="d", agent_dir=tmp_path, command=(), runner=RunnerKind.BWRAP)


def test_local_runner_is_refused_unless_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HIVEMIND_ALLOW_LOCAL_RUNNER", raising=False)
    with pytest.raises(RunnerUnavailable, match="development only"):
        LocalRunner()
    with pytest.raises(RunnerUnavailable):
        select_runner("local", allow_local=False)
    monkeypatch.setenv("HIVEMIND_ALLOW_LOCAL_RUNNER", "0")
    with pytest.raises(RunnerUnavailable):
        LocalRunner()
    monkeypatch.setenv("HIVEMIND_ALLOW_LOCAL_RUNNER", "1")
    assert LocalRunner().kind is RunnerKind.LOCAL
    assert select_runner("local", allow_local=False).kind is RunnerKind.LOCAL


def test_unknown_runner_name_is_refused() -> None:
    with pytest.raises(RunnerUnavailable, match="unknown runner"):
        select_runner("chroot", allow_local=True)


def test_available_runners_lists_every_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HIVEMIND_ALLOW_LOCAL_RUNNER", raising=False)
    statuses = available_runners(allow_local=False)
    assert [s.kind for s in statuses] == [RunnerKind.DOCKER, RunnerKind.BWRAP, RunnerKind.LOCAL]
    assert statuses[2].available is False
    best = [s.kind for s in statuses if s.available]
    if best:
        assert select_runner(None, allow_local=False).kind is best[0]
    else:
        with pytest.raises(RunnerUnavailable):
            select_runner("auto", allow_local=False)


def test_tail_buffer_keeps_the_end() -> None:
    tail = TailBuffer(1024)
    for i in range(100):
        tail.feed(f"{i:04d}".encode() * 64)
    assert tail.truncated
    assert tail.total == 100 * 256
    text = tail.text()
    assert len(text) == 1024
    assert text.endswith("0099" * 64)


async def test_run_bounded_kills_the_process_group_at_the_deadline() -> None:
    script = "import os,time\nif os.fork()==0:\n    time.sleep(30)\ntime.sleep(30)\n"
    with trio.fail_after(15):
        result = await run_bounded(
            [os.sys.executable, "-c", script], env={}, cwd="/", timeout_s=0.5, tail_bytes=1024
        )
    assert result.timed_out
    assert result.exit_code != 0
    assert result.duration_s < 10


# -- base image mirror ---------------------------------------------------------------------


def test_mirror_from_deb822_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\n# comment\nURIs: file:/srv/mirror/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb\nURIs: file:/srv/mirror/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n"
    )
    assert apt_mirror(tmp_path) == "file:/srv/mirror/debian"


def test_mirror_from_one_line_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "# deb file:/srv/commented/debian bookworm main\n"
        "deb [arch=amd64] file:/srv/one/debian bookworm main\n"
    )
    assert apt_mirror(tmp_path) == "file:/srv/one/debian"


def test_mirror_missing_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text("deb file:/srv/x/debian trixie main\n")
    with pytest.raises(BaseImageError):
        apt_mirror(tmp_path)


# -- cgroup v2 -------------------------------------------------------------------------------
# This machine mounts cgroup v1, so no v2 hierarchy with controllers is reachable here: the
# v2 bookkeeping is checked against a stand-in directory laid out like cgroupfs (a test
# double for the kernel's filesystem). The bwrap sandbox tests exercise whichever version
# the machine running them has.


def _fake_v2_root(root: Path) -> None:
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
    (root / "cgroup.subtree_control").write_text("")


def test_cgroup_v2_parent_enables_controllers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hivemind_rooms.runners import _cgroup

    root = tmp_path / "cgroup"
    _fake_v2_root(root)
    monkeypatch.setattr(_cgroup, "_ROOT", root)
    (root / "hivemind.runs").mkdir()
    (root / "hivemind.runs" / "cgroup.subtree_control").write_text("")
    parent = _cgroup.cgroup_v2_parent()
    assert parent == root / "hivemind.runs"
    # cgroupfs takes one "+name" per write; a plain file keeps only the last one.
    assert (root / "cgroup.subtree_control").read_text() == "+cpu"
    assert (parent / "cgroup.subtree_control").read_text() == "+cpu"


def test_cgroup_v2_without_memory_controller_is_unusable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hivemind_rooms.runners import _cgroup

    root = tmp_path / "cgroup"
    _fake_v2_root(root)
    (root / "cgroup.controllers").write_text("hugetlb\n")
    monkeypatch.setattr(_cgroup, "_ROOT", root)
    assert _cgroup.cgroup_v2_parent() is None


def test_cgroup_v2_run_writes_the_limits(tmp_path: Path) -> None:
    from hivemind_rooms.runners._cgroup import CgroupV2Run

    parent = tmp_path / "hivemind.runs"
    parent.mkdir()
    original_mkdir = Path.mkdir

    def mkdir_with_interface(self: Path, *args: object, **kwargs: object) -> None:
        original_mkdir(self, *args, **kwargs)
        for name in ("memory.max", "memory.swap.max", "pids.max", "cpu.max", "memory.events"):
            (self / name).write_text("")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Path, "mkdir", mkdir_with_interface)
        run = CgroupV2Run.create(parent, SandboxLimits(memory_mb=64, pids=24, cpus=0.5))
    (group,) = parent.iterdir()
    assert (group / "memory.max").read_text() == str(64 * 1024 * 1024)
    assert (group / "memory.swap.max").read_text() == "0"
    assert (group / "pids.max").read_text() == "24"
    assert (group / "cpu.max").read_text() == "50000 100000"
    assert run.procs_files == [str(group / "cgroup.procs")]
    assert not run.oom_killed()
    (group / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert run.oom_killed()


def test_seccomp_program_checks_arch_and_every_denied_call() -> None:
    import struct

    from hivemind_rooms.runners._seccomp import DENIED_X86_64, seccomp_program

    program = seccomp_program()
    assert len(program) % 8 == 0
    instructions = [struct.unpack("=HBBI", program[i : i + 8]) for i in range(0, len(program), 8)]
    assert instructions[0] == (0x20, 0, 0, 4)
    assert instructions[1][0] == 0x15
    assert instructions[1][3] == 0xC000003E
    assert instructions[2] == (0x06, 0, 0, 0x80000000)
    compared = {k for code, _, _, k in instructions if code == 0x15}
    assert set(DENIED_X86_64.values()) <= compared
    assert {56, 435} <= compared
    assert instructions[-1] == (0x06, 0, 0, 0x00050000 | 1)
    for at, (code, jt, jf, _) in enumerate(instructions):
        if code & 0x07 == 0x05:
            assert at + 1 + max(jt, jf) < len(instructions)


async def test_snapshot_cache_evicts_the_least_recently_used_idle_snapshot(
    tmp_path: Path,
) -> None:
    from hivemind_rooms.runners._shared import SnapshotCache

    cache = SnapshotCache(max_entries=2)
    images = []
    for n in range(3):
        root = tmp_path / f"a{n}"
        root.mkdir()
        (root / "Dockerfile").write_text(BASE + 'COPY . /agent\nCMD ["python3", "m.py"]\n')
        (root / "m.py").write_text(f"print({n})\n")
        if n == 2:
            # The first snapshot is in use by a run: the second one is evicted instead.
            with cache.in_use(images[0]):
                images.append(await cache.prepare(root, agent_dir_digest(root), RunnerKind.BWRAP))
        else:
            images.append(await cache.prepare(root, agent_dir_digest(root), RunnerKind.BWRAP))
    assert images[0].agent_dir.is_dir()
    assert not images[1].agent_dir.exists()
    assert (images[2].agent_dir / "m.py").read_text() == "print(2)\n"
    with pytest.raises(RunnerError, match="prepare the agent again"), cache.in_use(images[1]):
        pass
    again = await cache.prepare(tmp_path / "a1", images[1].digest, RunnerKind.BWRAP)
    assert (again.agent_dir / "m.py").read_text() == "print(1)\n"
