from __future__ import annotations

import csv
import io
import json

import pytest
from hivemind_hub import load_config, open_store
from hivemind_hub.config import config_path, write_config


def add(run_json, *args):
    return run_json("hub", "add-client", *args)


def stored(client_id, backend=None):
    config = load_config()
    with open_store(backend or config.database) as store:
        return store.get(client_id)


# -- add-client ----------------------------------------------------------------------


def test_add_client_generates_credentials_without_crypto_key(run):
    result = run("hub", "add-client")
    assert result.exit_code == 0, result.stderr
    assert "Node ID: 1" in result.stdout
    assert "Encryption Key" not in result.stdout
    client = stored(1)
    assert len(client.api_key) == 32
    assert len(client.password) == 32
    assert client.crypto_key is None
    assert client.name == "HiveMind-Node-0"
    assert client.allowed_types == ()
    assert client.api_key in result.stdout
    assert "allow-msg" in result.stdout
    assert config_path().exists()


def test_add_client_with_all_options(run_json):
    data = add(
        run_json,
        "--name", "sat",
        "--access-key", "k" * 32,
        "--password", "correct horse battery staple",
        "--admin",
        "--metadata", '{"account_id": "acct_1"}',
        "--allow", "recognizer_loop:utterance",
    )  # fmt: skip
    assert data["created"] is True
    client = stored(data["client_id"])
    assert client.is_admin is True
    assert client.name == "sat"
    assert client.metadata == {"account_id": "acct_1"}
    assert client.allowed_types == ("recognizer_loop:utterance",)
    assert client.password == "correct horse battery staple"


def test_add_client_admin_takes_a_value(run_json):
    assert add(run_json, "--admin", "false")["is_admin"] is False
    assert add(run_json, "--admin", "true")["is_admin"] is True


def test_add_client_crypto_key_is_deprecated(run):
    result = run("hub", "add-client", "--crypto-key", "0123456789abcdef")
    assert result.exit_code == 0
    assert "deprecated" in result.stderr
    assert stored(1).crypto_key == "0123456789abcdef"


def test_add_client_crypto_key_length_checked(run):
    result = run("hub", "add-client", "--crypto-key", "short")
    assert result.exit_code == 2
    assert "16 characters" in result.stderr
    assert stored(1) is None


def test_add_client_refuses_weak_password_unless_allowed(run):
    weak = run("hub", "add-client", "--password", "1234")
    assert weak.exit_code == 2
    assert "too weak" in weak.stderr
    ok = run("hub", "add-client", "--password", "1234", "--allow-weak-password")
    assert ok.exit_code == 0
    assert stored(1).password == "1234"


def test_add_client_bad_metadata(run):
    result = run("hub", "add-client", "--metadata", "{nope")
    assert result.exit_code == 2
    assert "--metadata" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    not_object = run("hub", "add-client", "--metadata", "[1]")
    assert not_object.exit_code == 2


def test_add_client_upserts_by_access_key(run_json):
    first = add(run_json, "--access-key", "same-key", "--name", "one", "--admin")
    second = add(run_json, "--access-key", "same-key", "--name", "two", "--allow", "speak")
    assert second["created"] is False
    assert second["client_id"] == first["client_id"]
    client = stored(first["client_id"])
    assert (client.name, client.allowed_types) == ("two", ("speak",))
    # What was not given is kept: the admin flag and the password.
    assert client.is_admin is True
    assert client.password == first["password"]
    add(run_json, "--access-key", "same-key", "--admin", "false")
    assert stored(first["client_id"]).is_admin is False


def test_add_client_rejects_reserved_access_key(run):
    result = run("hub", "add-client", "--access-key", "revoked")
    assert result.exit_code == 2
    assert "revoked" in result.stderr


# -- selection -------------------------------------------------------------------------


def test_node_id_may_be_an_access_key(run_json):
    add(run_json, "--access-key", "the-key")
    data = run_json("hub", "make-admin", "the-key")
    assert data["changed"] is True
    assert stored(1).is_admin


def test_missing_node_id_auto_selects_single_client(run):
    run("hub", "add-client")
    result = run("hub", "make-admin")
    assert result.exit_code == 0
    assert "Only one client" in result.stdout
    assert stored(1).is_admin


def test_missing_node_id_prompts(run):
    run("hub", "add-client", "--name", "a")
    run("hub", "add-client", "--name", "b")
    result = run("hub", "make-admin", input="2\n")
    assert result.exit_code == 0
    assert "HiveMind clients" in result.stderr
    assert stored(2).is_admin
    assert not stored(1).is_admin


def test_prompt_exit_choice_aborts(run):
    run("hub", "add-client")
    run("hub", "add-client")
    result = run("hub", "make-admin", input="exit\n")
    assert result.exit_code == 1
    assert not stored(1).is_admin


def test_prompt_with_empty_database(run):
    result = run("hub", "make-admin")
    assert result.exit_code == 3
    assert "empty" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("make-admin", "42"),
        ("revoke-admin", "nokey"),
        ("allow-msg", "speak", "42"),
        ("blacklist-msg", "speak", "42"),
        ("delete-client", "42"),
        ("rename-client", "42", "--name", "x"),
        ("blacklist-skill", "s", "42"),
        ("set-metadata", "42", "--key", "a", "--value", "1"),
        ("allow-escalate", "42"),
    ],
)
def test_unknown_node_id(run, args):
    run("hub", "add-client")
    result = run("hub", *args)
    assert result.exit_code == 3
    assert "no client matches" in result.stderr


# -- permissions -----------------------------------------------------------------------


def test_allow_and_blacklist_msg(run, run_json):
    add(run_json)
    assert run_json("hub", "allow-msg", "speak", "1")["changed"] is True
    again = run("hub", "allow-msg", "speak", "1")
    assert again.exit_code == 0
    assert "already" in again.stdout
    run_json("hub", "allow-msg", "recognizer_loop:utterance", "1")
    assert stored(1).allowed_types == ("speak", "recognizer_loop:utterance")
    data = run_json("hub", "blacklist-msg", "recognizer_loop:utterance", "1")
    assert data["allowed_types"] == ["speak"]
    assert stored(1).allowed_types == ("speak",)
    assert run_json("hub", "blacklist-msg", "nothing", "1")["changed"] is False


def test_allow_msg_rejects_empty_type(run, run_json):
    add(run_json)
    assert run("hub", "allow-msg", " ", "1").exit_code == 2


@pytest.mark.parametrize(
    ("allow", "deny", "field"),
    [
        ("allow-escalate", "blacklist-escalate", "can_escalate"),
        ("allow-propagate", "blacklist-propagate", "can_propagate"),
        ("allow-broadcast", "blacklist-broadcast", "can_broadcast"),
        ("make-admin", "revoke-admin", "is_admin"),
    ],
)
def test_flag_commands(run_json, allow, deny, field):
    add(run_json)
    run_json("hub", deny, "1")
    assert getattr(stored(1), field) is False
    assert run_json("hub", deny, "1")["changed"] is False
    run_json("hub", allow, "1")
    assert getattr(stored(1), field) is True


@pytest.mark.parametrize(
    ("block", "unblock", "key"),
    [
        ("blacklist-skill", "allow-skill", "skill_blacklist"),
        ("blacklist-intent", "allow-intent", "intent_blacklist"),
    ],
)
def test_skill_and_intent_blacklists_live_in_metadata(run_json, block, unblock, key):
    add(run_json)
    run_json("hub", block, "thing-a", "1")
    run_json("hub", block, "thing-b", "1")
    assert stored(1).metadata[key] == ["thing-a", "thing-b"]
    assert run_json("hub", block, "thing-a", "1")["changed"] is False
    run_json("hub", unblock, "thing-a", "1")
    assert stored(1).metadata[key] == ["thing-b"]
    assert run_json("hub", unblock, "thing-a", "1")["changed"] is False


def test_rename_client(run_json):
    add(run_json)
    run_json("hub", "rename-client", "1", "--name", "renamed")
    assert stored(1).name == "renamed"


def test_rename_requires_name(run, run_json):
    add(run_json)
    result = run("hub", "rename-client", "1")
    assert result.exit_code == 2


# -- set-metadata ----------------------------------------------------------------------


def test_set_metadata_merge_key_value_and_unset(run_json):
    add(run_json)
    run_json("hub", "set-metadata", "1", "--metadata", '{"tier": "pro", "region": "eu"}')
    run_json("hub", "set-metadata", "1", "--key", "skill_blacklist", "--value", '["w"]')
    run_json("hub", "set-metadata", "1", "--key", "plain", "--value", "text value")
    data = run_json("hub", "set-metadata", "1", "--unset", "region")
    expected = {"tier": "pro", "skill_blacklist": ["w"], "plain": "text value"}
    assert data["metadata"] == expected
    assert dict(stored(1).metadata) == expected
    assert stored(1).skill_blacklist == ("w",)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--key", "a"), "together"),
        (("--value", "1"), "together"),
        ((), "nothing to do"),
        (("--key", "a", "--value", "1", "--unset", "a"), "conflicts"),
    ],
)
def test_set_metadata_usage_errors(run, run_json, args, fragment):
    add(run_json)
    result = run("hub", "set-metadata", "1", *args)
    assert result.exit_code == 2
    assert fragment in result.stderr


def test_set_metadata_bad_json(run, run_json):
    add(run_json)
    result = run("hub", "set-metadata", "1", "--metadata", "not json")
    assert result.exit_code == 2
    assert "not valid JSON" in result.stderr


# -- list / delete / export -------------------------------------------------------------


def test_list_clients_masks_secrets(run, run_json):
    created = add(run_json, "--access-key", "A" * 32, "--password", "P" * 40)
    assert created["api_key"] == "A" * 32
    result = run("hub", "list-clients")
    assert result.exit_code == 0
    assert "A" * 32 not in result.stdout
    assert "P" * 40 not in result.stdout
    listed = run_json("hub", "list-clients")
    assert listed[0]["password"] == "********"
    assert listed[0]["api_key"].startswith("AAAA")
    assert listed[0]["api_key"] != "A" * 32
    shown = run_json("hub", "list-clients", "--show-secrets")
    assert shown[0]["password"] == "P" * 40
    assert shown[0]["api_key"] == "A" * 32
    assert "P" * 40 in run("hub", "list-clients", "--show-secrets").stdout


def test_delete_client_revokes_for_good(run, run_json):
    add(run_json, "--access-key", "gone-key")
    add(run_json, "--access-key", "kept-key")
    result = run("hub", "delete-client", "1")
    assert result.exit_code == 0
    config = load_config()
    with open_store(config.database) as store:
        assert store.get_by_access_key("gone-key") is None
        assert store.get_by_access_key("revoked") is None
        assert store.get(1) is None
    assert [c["client_id"] for c in run_json("hub", "list-clients")] == [2]
    assert add(run_json)["client_id"] == 3
    assert run("hub", "delete-client", "1").exit_code == 3


def test_export_clients_csv(run, run_json, tmp_path):
    add(run_json, "--access-key", "k1", "--password", "p" * 20, "--crypto-key", "c" * 16)
    out = run("hub", "export-clients")
    rows = list(csv.reader(io.StringIO(out.stdout)))
    assert rows[0] == ["client_id", "name", "is_admin", "access_key", "password"]
    assert rows[1][3:] == ["k1", "p" * 20]
    assert "c" * 16 not in out.stdout
    target = tmp_path / "exports"
    target.mkdir()
    run("hub", "export-clients", "--path", str(target))
    written = target / "hivemind_clients.csv"
    assert written.read_text() == out.stdout
    assert written.stat().st_mode & 0o077 == 0


# -- config / backends / migration --------------------------------------------------------


def test_print_config_masks_secrets(run):
    tree = {"upstream": {"enabled": True, "host": "h", "password": "UPSECRET"}}
    write_config(tree)
    result = run("hub", "print-config")
    data = json.loads(result.stdout)
    assert data["upstream"]["password"] == "********"
    assert data["network_protocol"]["hivemind-websocket-plugin"]["host"] == "127.0.0.1"
    assert "UPSECRET" in run("hub", "print-config", "--show-secrets").stdout


def test_invalid_config_exit_code(run):
    write_config({"limits": {"handshake_timeout": "soon"}})
    result = run("hub", "list-clients")
    assert result.exit_code == 5
    assert "limits.handshake_timeout" in result.stderr


def test_db_backend_option_selects_store(run_json, xdg):
    add(run_json)
    run_json("hub", "--db-backend", "json", "add-client", "--access-key", "json-only")
    assert (xdg / "data" / "hivemind-core" / "clients.json").exists()
    sqlite_keys = [c["client_id"] for c in run_json("hub", "list-clients")]
    json_list = run_json("hub", "--db-backend", "json", "list-clients", "--show-secrets")
    assert sqlite_keys == [1]
    assert [c["api_key"] for c in json_list] == ["json-only"]


def test_migrate_db_json_to_sqlite(run, run_json, xdg):
    run_json("hub", "--db-backend", "json", "add-client", "--access-key", "k1", "--admin")
    run_json("hub", "--db-backend", "json", "blacklist-skill", "s1", "1")
    data = run_json("hub", "migrate-db", "--from", "json", "--to", "sqlite")
    assert data["migrated"] == 1
    client = stored(1, "sqlite")
    assert client.api_key == "k1"
    assert client.is_admin
    assert client.skill_blacklist == ("s1",)
    assert stored(1, "json") == client


def test_migrate_db_set_default_switches_config(run_json):
    run_json("hub", "--db-backend", "json", "add-client")
    run_json("hub", "migrate-db", "--from", "json", "--to", "sqlite", "--set-default")
    assert load_config().database.backend == "sqlite"
    run_json("hub", "migrate-db", "--from", "sqlite", "--to", "json", "--set-default")
    assert load_config().database.backend == "json"


def test_migrate_db_same_backend_is_usage_error(run):
    result = run("hub", "migrate-db", "--from", "sqlite", "--to", "sqlite")
    assert result.exit_code == 2
    assert "different" in result.stderr


def test_migrate_db_unknown_backend(run):
    assert run("hub", "migrate-db", "--to", "mongo").exit_code == 2


def test_redis_backend_and_migration(run_json, redis_config):
    run_json("hub", "add-client", "--access-key", "k-sql", "--allow", "speak")
    data = run_json("hub", "migrate-db", "--from", "sqlite", "--to", "redis")
    assert data["migrated"] == 1
    listed = run_json("hub", "--db-backend", "redis", "list-clients", "--show-secrets")
    assert [(c["api_key"], c["allowed_types"]) for c in listed] == [("k-sql", ["speak"])]
    run_json("hub", "--db-backend", "redis", "delete-client", "k-sql")
    assert run_json("hub", "--db-backend", "redis", "list-clients") == []


# -- policy / listen / aliases ------------------------------------------------------------


def test_policy_list_and_test(run, run_json):
    add(run_json, "--allow", "speak")
    assert run_json("hub", "policy", "list")["chain"] == [
        "message-type-acl",
        "default-session",
        "hivemind-ovos-agent-policy",
    ]
    assert run_json("hub", "policy", "test", "1", "speak")["denied"] is False
    denied = run_json("hub", "policy", "test", "1", "other")
    assert (denied["denied"], denied["code"]) == (True, "acl_disallowed_type")
    session = run_json("hub", "policy", "test", "1", "speak", "--session-id", "default")
    assert session["code"] == "session_id_default_forbidden"


def test_listen_without_server_module(run, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "hivemind_hub.serve", None)  # import now fails
    result = run("hub", "listen", "--host", "127.0.0.1", "--port", "0")
    assert result.exit_code == 7
    assert "the hub server is not available in this build" in result.stderr
    assert "Traceback" not in result.stderr


def test_listen_passes_overrides_to_run_hub(run, monkeypatch):
    import sys
    import types

    seen = []
    fake = types.ModuleType("hivemind_hub.serve")
    fake.run_hub = seen.append
    monkeypatch.setitem(sys.modules, "hivemind_hub.serve", fake)
    result = run("hub", "listen", "--host", "::1", "--port", "6000")
    assert result.exit_code == 0
    assert (seen[0].listen.host, seen[0].listen.port) == ("::1", 6000)


def test_listen_rejects_bad_port(run):
    assert run("hub", "listen", "--port", "70000").exit_code == 2


def test_hivemind_core_alias_is_the_hub_group(runner):
    from hmctl import hub

    result = runner.invoke(hub, ["--json", "add-client", "--name", "x"], catch_exceptions=False)
    assert result.exit_code == 0
    assert json.loads(result.stdout)["name"] == "x"


def test_console_scripts_point_at_the_groups():
    from importlib.metadata import entry_points

    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert scripts["hmctl"] == "hmctl:cli"
    assert scripts["hivemind"] == "hmctl:cli"
    assert scripts["hivemind-core"] == "hmctl:hub"


def test_store_failure_exit_code(run):
    tree = {"database": {"module": "hivemind-redis-db-plugin",
                         "hivemind-redis-db-plugin": {"port": 1, "retry_attempts": 1}}}  # fmt: skip
    write_config(tree)
    result = run("hub", "list-clients")
    assert result.exit_code == 6
    assert "redis" in result.stderr


def test_unexpected_errors_have_no_traceback(run, monkeypatch):
    import hmctl._hub as hub_module

    def broken(*args, **kwargs):
        raise RuntimeError("kaput")

    monkeypatch.setattr(hub_module, "load_config", broken)
    result = run("hub", "list-clients")
    assert result.exit_code == 70
    assert "kaput" in result.stderr
    assert "Traceback" not in result.stderr


def test_every_command_has_help(run):
    from hmctl import cli

    def walk(group, prefix):
        for name, command in group.commands.items():
            yield [*prefix, name], command
            if hasattr(command, "commands"):
                yield from walk(command, [*prefix, name])

    for path, command in walk(cli, []):
        assert command.help or command.short_help, path
        assert run(*path, "--help").exit_code == 0


def test_db_backend_and_json_after_the_command_name(run, xdg):
    result = run("hub", "add-client", "--db-backend", "json", "--json", "--access-key", "k")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["client_id"] == 1
    assert (xdg / "data" / "hivemind-core" / "clients.json").exists()
    assert not (xdg / "data" / "hivemind-core" / "clients.db").exists()


@pytest.mark.parametrize("script", ["hmctl", "hivemind", "hivemind-core"])
def test_installed_console_scripts_run(xdg, script):
    import os
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).parent / script
    if not exe.exists():
        pytest.skip(f"{script} is not installed next to the interpreter")
    prefix = [] if script == "hivemind-core" else ["hub"]
    env = {**os.environ, "XDG_CONFIG_HOME": str(xdg / "config"), "XDG_DATA_HOME": str(xdg / "data")}
    add = subprocess.run(
        [str(exe), *prefix, "add-client", "--json", "--name", script],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert add.returncode == 0, add.stderr
    assert json.loads(add.stdout)["name"] == script
    missing = subprocess.run(
        [str(exe), *prefix, "delete-client", "99"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert missing.returncode == 3
    assert "Traceback" not in missing.stderr
