from __future__ import annotations

import json
import uuid

import pytest
from click.testing import CliRunner
from hivemind_hub.config import config_path, default_config_dict, write_config


@pytest.fixture
def xdg(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("HMCTL_DEBUG", raising=False)
    return tmp_path


@pytest.fixture
def runner(xdg):
    return CliRunner()


@pytest.fixture
def run(runner):
    """Invoke ``hmctl`` and return the click Result (stdout/stderr kept apart)."""
    from hmctl import cli

    def invoke(*args, input=None):
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    return invoke


@pytest.fixture
def run_json(run):
    def invoke(*args):
        result = run("--json", *args)
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)

    return invoke


@pytest.fixture
def redis_config(xdg, redis_server):
    """server.json whose Redis block points at the throw-away server."""
    tree = default_config_dict()
    tree["database"]["hivemind-redis-db-plugin"] = {
        **redis_server.options,
        "index_prefix": f"t{uuid.uuid4().hex[:12]}",
    }
    write_config(tree)
    return json.loads(config_path().read_text())
