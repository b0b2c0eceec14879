from __future__ import annotations

from pathlib import Path

import pytest
from hivemind_rooms.settings import Settings, SettingsError, is_loopback_host


def test_defaults(tmp_path: Path) -> None:
    s = Settings.from_env({"HIVEMIND_DATA_DIR": str(tmp_path)})
    assert s.data_dir == tmp_path
    assert s.host == "127.0.0.1"
    assert s.port == 8100
    assert s.admin_key == ""
    assert s.self_serve_signup is False
    assert s.enforce_credits is False
    assert s.attestation_provider == "dev"
    assert s.control_db_path == tmp_path / "control.sqlite3"
    assert s.is_loopback


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("TRUE", True), ("yes", True), ("0", False), ("false", False), ("No", False)],
)
def test_booleans(tmp_path: Path, raw: str, expected: bool) -> None:
    env = {
        "HIVEMIND_DATA_DIR": str(tmp_path),
        "HIVEMIND_BILLING_ENFORCE_CREDITS": raw,
        "HIVEMIND_SELF_SERVE_SIGNUP_ENABLED": raw,
    }
    s = Settings.from_env(env)
    assert s.enforce_credits is expected
    assert s.self_serve_signup is expected


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("HIVEMIND_BILLING_ENFORCE_CREDITS", "on-ish", "HIVEMIND_BILLING_ENFORCE_CREDITS"),
        ("HIVEMIND_SELF_SERVE_SIGNUP_ENABLED", "2", "HIVEMIND_SELF_SERVE_SIGNUP_ENABLED"),
        ("HIVEMIND_PORT", "http", "HIVEMIND_PORT"),
        ("HIVEMIND_PORT", "70000", "HIVEMIND_PORT"),
        ("HIVEMIND_ATTESTATION_PROVIDER", "sgx", "HIVEMIND_ATTESTATION_PROVIDER"),
        ("HIVEMIND_ADMIN_KEY", "short", "HIVEMIND_ADMIN_KEY"),
        ("HIVEMIND_SIGNUP_STARTER_CREDIT_CODE", "free-money", "STARTER_CREDIT_CODE"),
    ],
)
def test_bad_values_name_the_variable(tmp_path: Path, name: str, value: str, fragment: str) -> None:
    with pytest.raises(SettingsError, match=fragment):
        Settings.from_env({"HIVEMIND_DATA_DIR": str(tmp_path), name: value})


def test_admin_key_not_in_repr(tmp_path: Path) -> None:
    key = "admin-secret-value-123456"
    s = Settings.from_env(
        {
            "HIVEMIND_DATA_DIR": str(tmp_path),
            "HIVEMIND_ADMIN_KEY": key,
            "HIVEMIND_ATTESTATION_PROVIDER": "DSTACK",
        }
    )
    assert s.admin_key == key
    assert key not in repr(s)
    assert s.attestation_provider == "dstack"


@pytest.mark.parametrize(
    ("host", "loop"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("10.0.0.5", False),
        ("example.org", False),
    ],
)
def test_loopback_detection(host: str, loop: bool) -> None:
    assert is_loopback_host(host) is loop


def test_run_engine_switches_share_the_strict_parsers() -> None:
    from hivemind_rooms.pipeline import EngineConfig

    assert EngineConfig.from_env({"HIVEMIND_ALLOW_LOCAL_RUNNER": "yes"}).allow_local_runner
    assert not EngineConfig.from_env({"HIVEMIND_ALLOW_LOCAL_RUNNER": "0"}).allow_local_runner
    for name, bad in [("HIVEMIND_ALLOW_LOCAL_RUNNER", "on"), ("HIVEMIND_RUN_WORKERS", "0")]:
        with pytest.raises(SettingsError, match=name):
            EngineConfig.from_env({name: bad})
