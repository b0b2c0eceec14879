from __future__ import annotations

import json

import pytest
from hivemind_hub import ConfigError
from hivemind_hub.config import (
    config_path,
    data_dir,
    default_config_dict,
    load_config,
    parse_config,
    write_config,
)

UPSTREAM_CONFIG = {
    "agent_protocol": {
        "module": "hivemind-ovos-agent-plugin",
        "hivemind-ovos-agent-plugin": {"host": "127.0.0.1", "port": 8181},
    },
    "binary_protocol": {"module": None},
    "network_protocol": {
        "hivemind-websocket-plugin": {"host": "0.0.0.0", "port": 5678},
        "hivemind-http-plugin": {"host": "0.0.0.0", "port": 5679},
    },
    "database": {
        "module": "hivemind-json-db-plugin",
        "hivemind-json-db-plugin": {"name": "clients", "subfolder": "hivemind-core"},
    },
}


def test_paths_follow_xdg(xdg):
    assert config_path() == xdg / "config" / "hivemind-core" / "server.json"
    assert data_dir() == xdg / "data" / "hivemind-core"


def test_fresh_install_writes_loopback_sqlite_defaults(xdg):
    cfg = load_config()
    assert config_path().exists()
    written = json.loads(config_path().read_text())
    assert written["network_protocol"]["hivemind-websocket-plugin"]["host"] == "127.0.0.1"
    assert cfg.listen.host == "127.0.0.1"
    assert cfg.listen.port == 5678
    assert cfg.database.backend == "sqlite"
    assert [e.module for e in cfg.policy_chain] == ["hivemind-ovos-agent-policy"]
    assert cfg.binarize is False
    assert cfg.allowed_ciphers == ("CHACHA20-POLY1305", "AES-GCM")
    assert "JSON-B64" in cfg.allowed_encodings
    assert cfg.limits.handshake_timeout > 0
    assert cfg.limits.outbound_queue_size >= 1


def test_load_without_create_does_not_write(xdg):
    load_config(create=False)
    assert not config_path().exists()


def test_existing_json_store_keeps_json_backend(xdg):
    data_dir().mkdir(parents=True)
    (data_dir() / "clients.json").write_text("{}")
    assert load_config().database.backend == "json"


def test_json_and_db_present_means_sqlite(xdg):
    data_dir().mkdir(parents=True)
    (data_dir() / "clients.json").write_text("{}")
    (data_dir() / "clients.db").write_bytes(b"")
    assert load_config().database.backend == "sqlite"


def test_upstream_config_reads_unchanged(xdg):
    write_config(UPSTREAM_CONFIG)
    cfg = load_config()
    assert cfg.listen.host == "0.0.0.0"
    assert cfg.database.backend == "json"
    assert cfg.database.options == {"name": "clients", "subfolder": "hivemind-core"}
    assert "hivemind-http-plugin" in cfg.network_protocol
    # The file itself is not rewritten by loading it.
    assert json.loads(config_path().read_text()) == UPSTREAM_CONFIG


@pytest.mark.parametrize(
    ("patch", "key"),
    [
        ({"limits": {"handshake_timeout": "abc"}}, "limits.handshake_timeout"),
        ({"limits": {"handshake_timeout": -1}}, "limits.handshake_timeout"),
        ({"limits": {"outbound_queue_size": 0}}, "limits.outbound_queue_size"),
        ({"limits": {"max_connections_per_credential": True}}, "max_connections_per_credential"),
        ({"binarize": "yes"}, "binarize"),
        ({"allowed_ciphers": "AES-GCM"}, "allowed_ciphers"),
        ({"database": {"module": "mongo"}}, "database.module"),
        ({"policy": {"chain": [{"config": {}}]}}, "policy.chain[0].module"),
        ({"policy": {"chain": [{"module": "x", "optional": "no"}]}}, "policy.chain[0].optional"),
        ({"policy": {"chain": {"module": "x"}}}, "policy.chain"),
        (
            {"network_protocol": {"hivemind-websocket-plugin": {"port": 70000}}},
            "hivemind-websocket-plugin.port",
        ),
        ({"upstream": {"enabled": 1}}, "upstream.enabled"),
        ({"limits": []}, "limits"),
    ],
)
def test_invalid_values_name_the_key(patch, key):
    tree = default_config_dict()
    for top, value in patch.items():
        if isinstance(value, dict) and isinstance(tree.get(top), dict):
            for sub, subvalue in value.items():
                if isinstance(subvalue, dict) and isinstance(tree[top].get(sub), dict):
                    tree[top][sub].update(subvalue)
                else:
                    tree[top][sub] = subvalue
        else:
            tree[top] = value
    with pytest.raises(ConfigError) as info:
        parse_config(tree)
    assert key in str(info.value)


def test_file_values_override_defaults_deeply(xdg):
    write_config({"limits": {"handshake_timeout": 3}})
    cfg = load_config()
    assert cfg.limits.handshake_timeout == 3.0
    assert cfg.limits.max_frame_bytes == 10 * 1024 * 1024


def test_policy_chain_accepts_plain_names(xdg):
    entry = {"module": "b", "optional": True, "config": {"x": 1}}
    write_config({"policy": {"chain": ["a", entry]}})
    chain = load_config().policy_chain
    assert [(e.module, e.optional, dict(e.config)) for e in chain] == [
        ("a", False, {}),
        ("b", True, {"x": 1}),
    ]


def test_invalid_json_file(xdg):
    config_path().parent.mkdir(parents=True)
    config_path().write_text("{nope")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config()


def test_non_object_file(xdg):
    config_path().parent.mkdir(parents=True)
    config_path().write_text("[1, 2]")
    with pytest.raises(ConfigError, match="JSON object"):
        load_config()


def test_config_objects_are_frozen(xdg):
    cfg = load_config()
    with pytest.raises(AttributeError):
        cfg.listen.host = "0.0.0.0"  # type: ignore[misc]


def test_upstream_password_not_in_repr(xdg):
    write_config({"upstream": {"enabled": True, "host": "h", "password": "TOPSECRET"}})
    assert "TOPSECRET" not in repr(load_config().upstream)
