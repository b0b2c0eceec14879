"""Every setting is checked before the service opens anything or binds.

The launcher tests start real processes (``hmctl rooms serve`` and a python
process calling ``serve_rooms``) with one bad variable and check that the
process stops with one clear line naming it, without listening.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from hivemind_rooms.pipeline import EngineConfig
from hivemind_rooms.pipeline._config import RUNNER_CHOICES, SCOPE_MODES
from hivemind_rooms.runners import RunnerKind
from hivemind_rooms.runners.local_runner import local_runner_allowed
from hivemind_rooms.settings import Settings, SettingsError

HMCTL = Path(sys.executable).with_name("hmctl")
TIMEOUT_S = 60

_spec = importlib.util.spec_from_file_location(
    "test_pipeline_support", Path(__file__).with_name("test_pipeline_support.py")
)
rs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rs)
sup = rs.sup


def _clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HIVEMIND_")}
    env.update(
        HOME=str(tmp_path / "home"),
        XDG_DATA_HOME=str(tmp_path / "xdg-data"),
        XDG_CONFIG_HOME=str(tmp_path / "xdg-config"),
        XDG_STATE_HOME=str(tmp_path / "xdg-state"),
        **extra,
    )
    return env


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _refused(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as conn:
        conn.settimeout(2)
        return conn.connect_ex(("127.0.0.1", port)) != 0


BAD_VALUES = [
    ("HIVEMIND_RUN_WORKERS", "abc", "between 1 and 64"),
    ("HIVEMIND_RUNNER", "dokcer", "auto, docker, bwrap, local"),
    ("HIVEMIND_SCOPE_MODE", "fastest", "fast, rehearsed, sealed_conservative"),
    ("HIVEMIND_ALLOW_LOCAL_RUNNER", "on", "1/true/yes"),
    ("HIVEMIND_ARTIFACT_RETENTION_SECONDS", "0", "between 1 and 100000000"),
]


@pytest.mark.parametrize(("name", "value", "accepted"), BAD_VALUES[:3])
def test_hmctl_rooms_serve_refuses_a_bad_run_setting(
    tmp_path: Path, name: str, value: str, accepted: str
) -> None:
    data = tmp_path / "data"
    port = _free_port()
    done = subprocess.run(
        [str(HMCTL), "rooms", "serve", "--port", str(port), "--data-dir", str(data)],
        env=_clean_env(tmp_path, **{name: value}),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert name in lines[0]
    assert repr(value) in lines[0]
    assert accepted in lines[0]
    for word in ("listening", "ExceptionGroup", "internal error", "Traceback"):
        assert word not in output
    assert not data.exists()  # nothing was created, let alone opened
    assert _refused(port)


_SERVE_SCRIPT = """
import sys
import trio
from pathlib import Path
from hivemind_rooms._serve import serve_rooms
from hivemind_rooms.settings import Settings, SettingsError

settings = Settings(data_dir=Path(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]))
try:
    trio.run(serve_rooms, settings)
except SettingsError as exc:  # raised as itself, not inside an exception group
    print(f"refused: {exc}")
    sys.exit(3)
print("served")
"""


@pytest.mark.parametrize(("name", "value", "accepted"), BAD_VALUES[1:])
def test_serve_rooms_raises_the_settings_error_before_binding(
    tmp_path: Path, name: str, value: str, accepted: str
) -> None:
    data = tmp_path / "data"
    port = _free_port()
    done = subprocess.run(
        [sys.executable, "-c", _SERVE_SCRIPT, str(data), str(port)],
        env=_clean_env(tmp_path, **{name: value}),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert done.stdout.startswith(f"refused: {name} ")
    assert repr(value) in done.stdout
    assert accepted in done.stdout
    assert not (data / "control.sqlite3").exists()
    assert _refused(port)


async def test_serve_rooms_refuses_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hivemind_rooms._serve import serve_rooms

    monkeypatch.setenv("HIVEMIND_RUN_QUEUE_SIZE", "-1")
    with pytest.raises(SettingsError, match="HIVEMIND_RUN_QUEUE_SIZE"):
        await serve_rooms(Settings(data_dir=tmp_path, host="127.0.0.1", port=0))
    assert not (tmp_path / "control.sqlite3").exists()


@pytest.mark.parametrize(("name", "value", "accepted"), BAD_VALUES)
def test_settings_from_env_checks_the_run_settings(name: str, value: str, accepted: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({name: value})
    message = str(caught.value)
    assert message.startswith(f"{name} must be ")
    assert repr(value) in message
    assert accepted in message


def test_runner_and_scope_mode_names() -> None:
    assert set(RUNNER_CHOICES) == {"auto"} | {kind.value for kind in RunnerKind}
    assert EngineConfig.from_env({}).runner == "auto"
    assert EngineConfig.from_env({"HIVEMIND_RUNNER": " Bwrap "}).runner == "bwrap"
    assert EngineConfig.from_env({}).scope_mode == ""
    for mode in SCOPE_MODES:
        assert EngineConfig.from_env({"HIVEMIND_SCOPE_MODE": mode.upper()}).scope_mode == mode
    with pytest.raises(SettingsError, match="HIVEMIND_RUNNER must be one of auto, docker"):
        EngineConfig.from_env({"HIVEMIND_RUNNER": "sandbox"})
    with pytest.raises(SettingsError, match="HIVEMIND_RUNNER"):
        EngineConfig(runner="Docker")  # built in code: checked too, and exactly
    with pytest.raises(SettingsError, match="HIVEMIND_SCOPE_MODE"):
        EngineConfig(scope_mode="slow")


def test_readme_lists_the_accepted_words() -> None:
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text("utf-8")
    rows = {
        line.split("|")[1].strip(): line.split("|")[2]
        for line in text.splitlines()
        if line.startswith("| `HIVEMIND_")
    }
    for name, words in (("HIVEMIND_RUNNER", RUNNER_CHOICES), ("HIVEMIND_SCOPE_MODE", SCOPE_MODES)):
        assert {w.strip(" `") for w in rows[f"`{name}`"].split(",")} == set(words)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("true", True), ("YES", True), ("0", False), ("no", False), ("", False)],
)
def test_local_runner_switch_reads_every_boolean_spelling(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: bool
) -> None:
    monkeypatch.setenv("HIVEMIND_ALLOW_LOCAL_RUNNER", value)
    assert local_runner_allowed() is expected
    assert local_runner_allowed(allow_local=True) is True


def test_local_runner_switch_refuses_an_unknown_spelling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HIVEMIND_ALLOW_LOCAL_RUNNER", "enabled")
    with pytest.raises(SettingsError, match="HIVEMIND_ALLOW_LOCAL_RUNNER"):
        local_runner_allowed()


def test_runner_doctor_names_a_bad_switch(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hivemind_rooms.runners", "doctor"],
        env=_clean_env(tmp_path, HIVEMIND_ALLOW_LOCAL_RUNNER="maybe"),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("error: HIVEMIND_ALLOW_LOCAL_RUNNER must be one of")
    assert "Traceback" not in done.stderr


def test_forced_scope_mode_reaches_the_run(tmp_path: Path) -> None:
    with rs.client(tmp_path, scope_mode="sealed_conservative") as c:
        t = sup.new_tenant(c)
        rs.seed(c, t["api_key"])
        room = rs.make_room(c, t)
        run = rs.ask(c, room, t["api_key"], "who lives where?")
    assert run["status"] == "completed", run["error"]
    assert run["usage"]["scope_mode"] == "sealed_conservative"
    assert run["usage"]["scope_mode_reason"] == "operator_override"


def test_health_reports_the_configured_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HIVEMIND_ARTIFACT_RETENTION_SECONDS", "1234")
    monkeypatch.setenv("HIVEMIND_DISABLED_LLM_PROVIDERS", "Tinfoil, openrouter")
    monkeypatch.setenv("HIVEMIND_DISABLED_LLM_ROUTES", "openrouter:Some/Model")
    with sup.client(tmp_path) as c:  # the default engine, from the environment
        t = sup.new_tenant(c)
        health = c.get("/v1/health", headers=sup.auth(t["api_key"])).json()
    assert health["artifact_retention_seconds"] == 1234
    assert health["disabled_llm_providers"] == ["openrouter", "tinfoil"]
    assert health["disabled_llm_routes"] == ["openrouter:some/model"]
