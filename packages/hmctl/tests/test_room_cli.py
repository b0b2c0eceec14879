"""hmctl room-service commands against a real room service on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import json
import stat
import time
from pathlib import Path

import httpx
import pytest

_spec = importlib.util.spec_from_file_location(
    "room_support", Path(__file__).with_name("room_support.py")
)
sup = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sup)
room_env, world, ready = sup.room_env, sup.world, sup.ready


def _link(result_json: dict) -> str:
    return result_json["link"]


# -- profiles and local state ------------------------------------------------------


def test_init_detects_tenant_and_admin_profiles(world):
    key = world.tenant("alice")
    assert key.startswith("hmk_")
    world.ok("--profile", "ops", "init", "--service", world.url, "--api-key", sup.ADMIN)
    profiles = {p["name"]: p for p in world.json("profile", "list")["profiles"]}
    assert profiles["alice"]["role"] == "tenant"
    assert profiles["ops"]["role"] == "admin"
    assert profiles["alice"]["active"] is True  # the first init sets the active pointer
    shown = world.json("profile", "show", "alice")
    assert key not in json.dumps(shown)  # masked by default
    assert world.json("profile", "show", "alice", "--show-key")["api_key"] == key
    bad = world.run("--profile", "x", "init", "--service", world.url, "--api-key", "hmk_wrong")
    assert bad.exit_code == 13
    assert "not valid" in bad.stderr


def test_state_files_are_private_and_profiles_switch(world, room_env):
    world.tenant("alice")
    world.tenant("bob")
    world.ok("profile", "use", "bob")
    assert world.json("whoami")["name"] == "bob"
    assert world.json("--profile", "alice", "whoami")["name"] == "alice"
    root = room_env / "config" / "hivemind"
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))
    world.ok("-y", "profile", "remove", "bob")
    assert [p["name"] for p in world.json("profile", "list")["profiles"]] == ["alice"]
    missing = world.run("--profile", "bob", "whoami")
    assert missing.exit_code == 2
    assert "no profile named 'bob'" in missing.stderr
    assert "hint:" in missing.stderr


def test_boolean_environment_switches_are_strict(world, monkeypatch):
    monkeypatch.setenv("HIVEMIND_TRUST_ALL", "maybe")
    result = world.run("profile", "list")
    assert result.exit_code == 2
    assert "HIVEMIND_TRUST_ALL must be 1/true/yes or 0/false/no" in result.stderr
    monkeypatch.setenv("HIVEMIND_TRUST_ALL", "0")
    world.trust_dev_root()
    # "0" means off: the first-use compose-hash question is asked and, unanswered, refused
    refused = world.run("trust", "attest", "--service", world.url)
    assert refused.exit_code == 9
    monkeypatch.setenv("HIVEMIND_TRUST_ALL", "yes")
    assert world.json("trust", "attest", "--service", world.url)["decision"] == "tofu"


# -- billing ----------------------------------------------------------------------


def test_signup_credit_codes_and_balance(world):
    signup = ("--profile", "carol", "signup", "carol", "--service", world.url)
    # the service is verified before any key is made: no dev root, no signup
    refused = world.run(*signup)
    assert refused.exit_code == 9
    assert "no trusted dev attestation root" in refused.stderr
    world.trust_dev_root()
    unanswered = world.run(*signup)  # first use of the service: nobody approved its hash
    assert unanswered.exit_code == 9
    admin = ["--service", world.url, "--admin-key", sup.ADMIN]
    assert world.json("-y", "admin", "tenants", "list", *admin)["tenants"] == []
    created = world.json("-y", *signup)
    assert created["api_key"].startswith("hmk_")
    assert world.json("--profile", "carol", "whoami")["tenant_id"] == created["tenant_id"]
    code = world.json("admin", "credit-codes", "create", "--credit", "2.5", "--uses", "1", *admin)
    redeemed = world.json("--profile", "carol", "redeem-credit", code["code"])
    assert redeemed["balance_micro_usd"] == 2_500_000
    bal = world.json("--profile", "carol", "balance")
    assert bal["balance_micro_usd"] == 2_500_000
    assert "$2.500000" in world.ok("--profile", "carol", "balance").stdout
    again = world.run("--profile", "carol", "redeem-credit", code["code"])
    assert again.exit_code == 13
    assert "already redeemed" in again.stderr or "no redemptions left" in again.stderr


def test_expired_credit_code_is_refused(world):
    world.tenant("alice")
    admin = ["--service", world.url, "--admin-key", sup.ADMIN]
    code = world.json(
        "admin", "credit-codes", "create", "--credit", "1", "--expires-in", "1s", *admin
    )
    time.sleep(1.2)
    result = world.run("--profile", "alice", "redeem-credit", code["code"])
    assert result.exit_code == 13
    assert "expired" in result.stderr
    assert "Traceback" not in result.stderr
    listed = world.json("admin", "credit-codes", "list", *admin)["credit_codes"]
    assert [c["expired"] for c in listed if c["code_id"] == code["code_id"]] == [True]


def test_insufficient_balance_refuses_the_ask(room_env):
    with sup.RoomServer(room_env / "rooms-data", enforce_credits=True) as server:
        w = sup.World(server, sup.CliRunner())
        w.trust_dev_root()
        w.tenant("alice")
        w.tenant("bob")
        admin = ["--service", w.url, "--admin-key", sup.ADMIN]
        w.ok(
            "admin",
            "prices",
            "set",
            "openrouter",
            "test/model",
            "--prompt-usd-per-million",
            "1",
            "--completion-usd-per-million",
            "2",
            *admin,
        )
        models = {p["model"] for p in w.json("admin", "prices", "list", *admin)["prices"]}
        assert "test/model" in models
        room = w.json(
            "--profile",
            "alice",
            "-y",
            "room",
            "create",
            str(sup.AGENTS / "default-scope"),
            "--query-agent",
            str(sup.AGENTS / "default-query"),
            "--llm-provider",
            "openrouter",
        )
        result = w.run(
            "--profile",
            "bob",
            "-y",
            "room",
            "ask",
            room["link"],
            "hello",
            "--model",
            "test/model",
            "--max-tokens",
            "1000",
        )
        assert result.exit_code == 14, result.stderr
        assert "insufficient billing credit" in result.stderr
        assert "redeem-credit" in result.stderr  # the hint


# -- rooms ------------------------------------------------------------------------


def test_room_create_inspect_accept_and_data(ready):
    w = ready
    created = w.create_room()
    room_id, link = created["room_id"], created["link"]
    assert link.startswith("hmroom://")
    w.ok("--profile", "alice", "room", "add-data", room_id, "Ann is in band B", "--meta", "src=hr")
    items = w.json("--profile", "alice", "room", "data", room_id, "--show-text")["items"]
    assert [(i["text"], i["metadata"]) for i in items] == [("Ann is in band B", {"src": "hr"})]
    inspected = w.json("--profile", "bob", "room", "inspect", link)
    assert inspected["manifest_hash"] == created["manifest_hash"]
    assert inspected["manifest"]["name"] == "Salary bands"
    assert inspected["accepted"] is False
    assert inspected["attestation"]["label"] == "unattested"
    accepted = w.json("--profile", "bob", "room", "accept", link)
    assert accepted["accepted"] is True
    assert w.json("--profile", "bob", "room", "inspect", link)["accepted"] is True
    doctor = w.json("--profile", "bob", "doctor", link)
    assert {c["name"]: c["status"] for c in doctor["checks"]}["room acceptance"] == "OK"
    human = w.ok("--profile", "bob", "room", "inspect", link).stdout
    assert "UNATTESTED (dev)" in human
    assert "Signature" in human
    listed = w.json("--profile", "alice", "room", "list")["rooms"]
    assert [r["room_id"] for r in listed] == [room_id]


def test_room_create_options_reach_the_signed_manifest(ready, tmp_path):
    w = ready
    rules = tmp_path / "rules.md"
    rules.write_text("# Rules\nhide: email\n")
    policy = tmp_path / "policy.txt"
    policy.write_text("hide: email, phone\n")
    w.ok(
        "--profile",
        "alice",
        "agents",
        "upload",
        str(sup.AGENTS / "default-scope"),
        "--type",
        "scope",
    )
    scope_id = w.json("--profile", "alice", "agents", "list")["agents"][0]["agent_id"]
    created = w.json(
        "--profile",
        "alice",
        "-y",
        "room",
        "create",
        scope_id,
        "--name",
        "Opts",
        "--rules-file",
        str(rules),
        "--policy-file",
        str(policy),
        "--scope-visibility",
        "inspectable",
        "--query-visibility",
        "inspectable",
        "--output-visibility",
        "owner_and_querier",
        "--llm-provider",
        "tinfoil",
        "--trust-mode",
        "owner_approved",
        "--no-artifacts",
    )
    manifest = w.json("--profile", "alice", "room", "inspect", created["room_id"])["manifest"]
    assert manifest["rules"] == rules.read_text()
    assert manifest["policy"] == policy.read_text()
    assert manifest["scope"] == {"agent_id": scope_id, "visibility": "inspectable"}
    assert manifest["query"]["mode"] == "uploadable"
    assert manifest["query"]["visibility"] == "inspectable"
    assert manifest["output"]["visibility"] == "owner_and_querier"
    assert manifest["egress"] == {"llm_providers": ["tinfoil"], "allow_artifacts": False}
    live = w.json("trust", "attest")["compose_hash"]
    assert manifest["trust"] == {"mode": "owner_approved", "allowed_composes": [live]}
    bad = w.run("--profile", "alice", "room", "create", scope_id, "--scope-visibility", "sealed")
    assert bad.exit_code == 2
    assert "registered as inspectable" in bad.stderr
    pinned = w.run("--profile", "alice", "room", "create", scope_id, "--trust-mode", "pinned")
    assert pinned.exit_code == 2
    assert "--allowed-compose" in pinned.stderr
    missing_table = w.run(
        "--profile", "alice", "room", "create", scope_id, "--allowed-table", "nosuch"
    )
    assert missing_table.exit_code == 1
    assert "nosuch" in missing_table.stderr


def test_trust_update_needs_new_acceptance(ready):
    w = ready
    created = w.create_room()
    link = created["link"]
    w.ok("--profile", "bob", "room", "accept", link)
    updated = w.json(
        "--profile",
        "alice",
        "room",
        "trust",
        created["room_id"],
        "--mode",
        "owner_approved",
        "--approve-live",
    )
    assert updated["manifest_hash"] != created["manifest_hash"]
    assert updated["trust"]["mode"] == "owner_approved"
    after = w.json("--profile", "bob", "room", "inspect", link)
    assert after["manifest_hash"] == updated["manifest_hash"]
    assert after["accepted"] is False
    # a compose list without the live hash: the room now refuses this deployment
    w.ok("--profile", "alice", "room", "trust", created["room_id"], "--compose", "ab" * 32)
    refused = w.run("--profile", "bob", "room", "inspect", link)
    assert refused.exit_code == 9
    assert "does not allow the live compose hash" in refused.stderr


def test_invite_prune_and_delete(ready):
    w = ready
    first = w.create_room()
    second = w.create_room()
    invite = w.ok("--profile", "alice", "room", "invite", first["room_id"], "-q").stdout.strip()
    assert invite != first["link"]
    assert w.json("--profile", "bob", "room", "inspect", invite)["room_id"] == first["room_id"]
    dry = w.json("--profile", "alice", "room", "prune", "--all-active", "--keep", first["room_id"])
    assert dry == {"dry_run": True, "candidates": [second["room_id"]], "revoked": [], "errors": []}
    assert w.run("--profile", "alice", "room", "prune").exit_code == 2
    done = w.json(
        "--profile",
        "alice",
        "-y",
        "room",
        "prune",
        "--all-active",
        "--keep",
        first["room_id"],
        "--no-dry-run",
    )
    assert done["revoked"] == [second["room_id"]]
    declined = w.run("--profile", "alice", "room", "delete", first["room_id"], input="n\n")
    assert declined.exit_code == 1
    deleted = w.json("--profile", "alice", "-y", "room", "delete", first["room_id"])
    assert deleted["invites_revoked"] == 2
    gone = w.run("--profile", "bob", "room", "inspect", invite)
    assert gone.exit_code == 13


# -- asking -----------------------------------------------------------------------


def test_ask_verifies_everything_and_prints_the_answer(ready):
    w = ready
    created = w.create_room()
    w.ok("--profile", "alice", "room", "add-data", created["room_id"], "Ann is in band B")
    link = created["link"]
    unanswered = w.run("--profile", "bob", "room", "ask", link, "What do the notes say?")
    assert unanswered.exit_code == 9  # first use asks to accept; nobody said yes
    assert "not accepted" in unanswered.stderr
    answered = w.run("--profile", "bob", "room", "ask", link, "What do the notes say?", input="y\n")
    assert answered.exit_code == 0, answered.stderr
    assert "Ann is in band B" in answered.stdout
    assert "attestation verified" in answered.stdout
    assert "UNATTESTED (dev)" in answered.stdout
    result = w.json("--profile", "bob", "room", "ask", link, "What do the notes say?")
    assert result["status"] == "completed"
    assert result["attestation_ok"] is True
    assert "Ann is in band B" in result["output"]
    runs = w.json("--profile", "alice", "runs", "list")["runs"]
    assert result["run_id"] in [r["run_id"] for r in runs]
    shown = w.json("--profile", "alice", "runs", "show", result["run_id"])
    assert shown["payload_redacted"] is True  # querier_only: the owner sees no output
    assert shown["output"] is None
    assert shown["usage"] is None  # nor the participant's usage
    mine = w.json("runs", "show", result["run_id"], "--room", link)
    assert "Ann is in band B" in mine["output"]
    arts = w.json("runs", "artifacts", result["run_id"], "--room", link)
    assert arts["artifacts"] == []


def test_ask_without_payer_key_is_a_usage_error(ready):
    w = ready
    created = w.create_room()
    w.ok("-y", "profile", "remove", "bob")
    w.ok("profile", "use", "alice")
    w.ok("-y", "profile", "remove", "alice")
    result = w.run("room", "ask", created["link"], "hi")
    assert result.exit_code == 2
    assert "tenant key to pay" in result.stderr


def test_ask_with_an_uploaded_agent_verifies_its_digest(ready):
    w = ready
    created = w.json(
        "--profile",
        "alice",
        "-y",
        "room",
        "create",
        str(sup.AGENTS / "default-scope"),
        "--no-llm",
        "--query-visibility",
        "inspectable",
    )
    body = w.json(
        "--profile",
        "bob",
        "-y",
        "room",
        "ask",
        created["link"],
        "hi",
        "--agent",
        str(sup.AGENTS / "simple-query"),
    )
    assert body["status"] == "completed"
    assert body["attestation_ok"] is True
    run = w.json("runs", "show", body["run_id"], "--room", created["link"])
    query = run["attestation"]["body"]["agents"]["query"]
    from hmctl.client import local_agent_view, pack_agent

    local = local_agent_view(query["agent_id"], pack_agent(sup.AGENTS / "simple-query"))
    assert query["digest"] == local["files_digest_sha256"]


def test_run_that_never_finishes_times_out(ready):
    from hmctl._room_base import translate_client_error
    from hmctl.client import RoomApi, RunTimeout, wait_for_run

    key = sup.json.loads(
        ready.ok("--json", "--profile", "alice", "profile", "show", "--show-key").stdout
    )["api_key"]
    seen = []
    with RoomApi(ready.url, key) as api, pytest.raises(RunTimeout) as caught:
        wait_for_run(
            api,
            "0" * 12,
            deadline_seconds=0.3,
            interval=0.1,
            on_progress=lambda run, elapsed: seen.append(elapsed),
        )
    assert translate_client_error(caught.value).exit_code == 12
    assert "runs show" in caught.value.hint
    assert 2 <= len(seen) <= 10


# -- failure paths ----------------------------------------------------------------


def test_wrong_owner_key_in_link_is_refused(ready):
    from hivemind_rooms.links import RoomLink
    from hivemind_rooms.manifest import OwnerKey

    w = ready
    link = RoomLink.parse(w.create_room()["link"])
    forged = RoomLink(
        link.room_id, link.service_url, link.token, OwnerKey.generate().public_key_b64()
    ).format()
    result = w.run("--profile", "bob", "room", "ask", forged, "hi", input="y\n")
    assert result.exit_code == 11
    assert "failed verification" in result.stderr
    assert "hint:" in result.stderr
    runs = w.json("--profile", "alice", "runs", "list")["runs"]
    assert [r for r in runs if r.get("room_id")] == []  # no question was sent


def test_tampered_room_in_transit_is_refused(ready):
    """A tampering proxy between client and the real service edits the manifest."""
    from hmctl.client import (
        AttestationInvalid,
        LocalState,
        RoomApi,
        TrustOptions,
        resolve_target,
        verify_room,
    )

    w = ready
    target = resolve_target(LocalState(), None, w.create_room()["link"])
    real = httpx.HTTPTransport()

    class Tamper(httpx.BaseTransport):
        def handle_request(self, request):
            response = real.handle_request(request)
            if not request.url.path.endswith("/attest"):
                return response
            response.read()
            body = json.loads(response.content)
            body["room"]["envelope"]["manifest"]["name"] = "Something else"
            return httpx.Response(response.status_code, json=body)

    api = RoomApi(target.service, target.bearer, transport=Tamper())
    with api, pytest.raises(AttestationInvalid) as caught:
        verify_room(
            api,
            LocalState(),
            TrustOptions(assume_yes=True),
            room_id=target.room_id,
            owner_pubkey_b64=target.owner_pubkey_b64,
        )
    assert "failed verification" in caught.value.message
    real.close()


def test_tampered_stored_room_is_refused(ready, room_env):
    import sqlite3

    w = ready
    created = w.create_room()
    tenant_db = next((room_env / "rooms-data" / "tenants").glob("*.sqlite3"))
    for db in (room_env / "rooms-data" / "tenants").glob("*.sqlite3"):
        conn = sqlite3.connect(db)
        rows = conn.execute("SELECT name FROM sqlite_master WHERE name LIKE '%room%'").fetchall()
        names = [r[0] for r in rows]
        for table in names:
            cols = [c[1] for c in conn.execute(f"PRAGMA table_info({table})")]
            if "envelope" in cols:
                conn.execute(
                    f"UPDATE {table} SET envelope = replace(envelope, "
                    "'Salary bands', 'Salary b4nds')"
                )
        conn.commit()
        conn.close()
    assert tenant_db.exists()
    result = w.run("--profile", "bob", "room", "inspect", created["link"])
    assert result.exit_code in (4, 11)  # the service refuses (409) or the client does
    assert "verification" in result.stderr


def test_dev_attestation_for_a_remote_service_is_refused(ready):
    """The policy refuses dev quotes from a non-loopback URL (the real service answers)."""
    from hmctl.client import LocalState, RoomApi, TrustOptions, TrustRefused, verify_service

    w = ready
    real = httpx.HTTPTransport()
    origin = httpx.URL(w.url)

    class Route(httpx.BaseTransport):  # plays DNS: rooms.example.org -> the loopback service
        def handle_request(self, request):
            request.url = request.url.copy_with(host=origin.host, port=origin.port)
            return real.handle_request(request)

    with RoomApi("http://rooms.example.org", transport=Route()) as api:
        with pytest.raises(TrustRefused) as caught:
            verify_service(api, LocalState(), TrustOptions(assume_yes=True))
        assert "not on this machine" in caught.value.message
        assert "--allow-dev-attestation" in caught.value.hint
        from hmctl._room_base import translate_client_error

        shown = translate_client_error(caught.value)
        assert shown.exit_code == 9
        assert shown.message.splitlines() == [
            caught.value.message,
            f"hint: {caught.value.hint}",
        ]
        allowed = verify_service(api, LocalState(), TrustOptions(assume_yes=True, allow_dev=True))
        assert allowed.label == "unattested"
    real.close()


def test_dev_attestation_needs_a_trusted_root(world):
    result = world.run("-y", "trust", "attest", "--service", world.url)
    assert result.exit_code == 9
    assert "no trusted dev attestation root" in result.stderr
    assert "hmctl trust dev-root add" in result.stderr
    world.ok("trust", "dev-root", "add", "--data-dir", str(world.server.settings.data_dir))
    assert world.json("trust", "dev-root", "list")["dev_roots"] == [world.server.dev_root()]
    assert world.json("-y", "trust", "attest", "--service", world.url)["label"] == "unattested"
    world.ok("trust", "dev-root", "remove", world.server.dev_root())
    assert world.json("trust", "dev-root", "list")["dev_roots"] == []
    assert world.run("trust", "dev-root", "add", "not-a-key").exit_code == 2


def test_unreachable_service(room_env):
    from hmctl import cli

    runner = sup.CliRunner()
    dead = "http://127.0.0.1:9"
    r = runner.invoke(cli, ["init", "--service", dead, "--api-key", "hmk_x"])
    assert r.exit_code == 8
    assert "cannot reach" in r.stderr
    assert "Traceback" not in r.stderr
    link = (
        "hmroom://127.0.0.1:9/room_0123456789ab?service=http%3A%2F%2F127.0.0.1%3A9"
        "&token=hmq_" + "A" * 43 + "&owner_pubkey=" + "A" * 43 + "%3D"
    )
    r = runner.invoke(cli, ["room", "inspect", link])
    assert r.exit_code == 8
    r = runner.invoke(cli, ["room", "inspect", "hmroom://nonsense"])
    assert r.exit_code == 2
    assert "invalid hmroom link" in r.stderr


def test_skip_attestations_still_checks_signatures(ready):
    w = ready
    created = w.create_room()
    out = w.json(
        "--profile", "bob", "--dangerously-skip-attestations", "room", "inspect", created["link"]
    )
    assert out["attestation"]["label"] == "unverified"
    assert out["signature"] == "verified"


def test_trust_attest_reproduces_the_dev_compose(ready):
    out = ready.json("trust", "attest", "--reproduce")
    assert out["platform"] == "dev"
    assert [s["status"] for s in out["reproduce"]] == ["OK", "OK"]
    raw = ready.json("trust", "attest", "--raw")
    assert raw["document"]["compose_hash"] == out["compose_hash"]
    # what is shown and reproduced is the document that answered the nonce, not a
    # second, unverified fetch (which would be the service's cached plain bundle)
    plain = httpx.get(f"{ready.url}/v1/attestation", timeout=30).json()["attestation"]
    assert raw["document"]["quote_hex"] != plain["quote_hex"]
    shown = ready.json("trust", "show")
    assert shown["services"][ready.url]["approved_compose_hash"] == out["compose_hash"]
    ready.ok("trust", "reset", ready.url)
    assert ready.run("trust", "attest").exit_code == 9  # asks again, nobody answers


# -- agents, runs, admin ----------------------------------------------------------


def test_agents_commands(ready):
    w = ready
    up = w.json(
        "--profile",
        "alice",
        "agents",
        "upload",
        str(sup.AGENTS / "default-query"),
        "--type",
        "query",
        "--name",
        "dq",
    )
    agent_id = up["agent_id"]
    listed = w.json("--profile", "alice", "agents", "list", "--type", "query")["agents"]
    assert [a["agent_id"] for a in listed] == [agent_id]
    inspected = w.json("--profile", "alice", "agents", "inspect", agent_id)
    assert inspected["inspection_mode"] == "full"
    assert len(inspected["files_digest_sha256"]) == 64
    files = w.json("--profile", "alice", "agents", "files", agent_id)["files"]
    paths = {f["path"] for f in files}
    assert {"Dockerfile", "main.py", "hivemind_agent.py"} <= paths  # the SDK is added
    content = w.ok("--profile", "alice", "agents", "files", agent_id, "main.py").stdout
    assert content == (sup.AGENTS / "default-query" / "main.py").read_text()
    w.ok("--profile", "alice", "-y", "agents", "delete", agent_id)
    gone = w.run("--profile", "alice", "agents", "inspect", agent_id)
    assert gone.exit_code == 3


def test_admin_commands(world):
    world.trust_service()
    admin = ["--service", world.url, "--admin-key", sup.ADMIN]
    created = world.json("admin", "tenants", "create", "dave", *admin)
    assert (
        "hmctl --profile erin init" in world.ok("admin", "tenants", "create", "erin", *admin).stdout
    )
    names = {t["name"] for t in world.json("admin", "tenants", "list", *admin)["tenants"]}
    assert {"dave", "erin"} <= names
    dup = world.run("admin", "tenants", "create", "dave", *admin)
    assert dup.exit_code == 4
    reset = world.json("-y", "admin", "tenants", "reset-key", created["tenant_id"], *admin)
    assert reset["api_key"] != created["api_key"]
    grant = world.json("admin", "billing", "credits", created["tenant_id"], "3", *admin)
    assert grant["balance_micro_usd"] == 3_000_000
    accounts = world.json("admin", "billing", "accounts", *admin)["accounts"]
    assert {a["tenant_id"]: a["balance_micro_usd"] for a in accounts}[
        created["tenant_id"]
    ] == 3_000_000
    ledger = world.json("admin", "billing", "ledger", "--tenant-id", created["tenant_id"], *admin)
    assert [e["kind"] for e in ledger["ledger"]] == ["credit_grant"]
    code = world.json("admin", "credit-codes", "create", "--credit", "1", *admin)
    world.ok("admin", "credit-codes", "revoke", code["code_id"], *admin)
    listed = world.json("admin", "credit-codes", "list", "--include-revoked", *admin)
    assert [c["active"] for c in listed["credit_codes"] if c["code_id"] == code["code_id"]] == [
        False
    ]
    world.ok("-y", "admin", "tenants", "delete", created["tenant_id"], *admin)
    names = {t["name"] for t in world.json("admin", "tenants", "list", *admin)["tenants"]}
    assert "dave" not in names
    denied = world.run("admin", "tenants", "list", "--service", world.url, "--admin-key", "x" * 20)
    assert denied.exit_code == 13
    none = world.run("admin", "tenants", "list")
    assert none.exit_code == 2
    assert "--admin-key" in none.stderr


def test_admin_key_from_environment_and_admin_profile(world, monkeypatch):
    world.trust_service()
    monkeypatch.setenv("HIVEMIND_ADMIN_KEY", sup.ADMIN)
    assert world.json("admin", "tenants", "list", "--service", world.url)["tenants"] == []
    monkeypatch.delenv("HIVEMIND_ADMIN_KEY")
    world.ok("--profile", "ops", "init", "--service", world.url, "--api-key", sup.ADMIN)
    assert world.json("--profile", "ops", "admin", "tenants", "list")["tenants"] == []
    assert world.json("--profile", "ops", "whoami")["role"] == "admin"


def test_artifacts_are_fetched_after_verification(ready, tmp_path):
    w = ready
    agents = tmp_path / "my-agents"
    (agents / "sdk").mkdir(parents=True)
    (agents / "sdk" / "hivemind_agent.py").write_bytes(
        (sup.AGENTS / "sdk" / "hivemind_agent.py").read_bytes()
    )
    report = agents / "report-query"
    report.mkdir()
    (report / "Dockerfile").write_text(
        'FROM hivemind/agent-base:bookworm\nCMD ["python3", "/agent/main.py"]\n'
    )
    (report / "main.py").write_text(
        "from hivemind_agent import Bridge\n"
        "bridge = Bridge()\n"
        "prompt = str(bridge.inputs().get('prompt', ''))\n"
        "bridge.upload_artifact('report.txt', ('report for: ' + prompt).encode())\n"
        "bridge.finish('see report.txt')\n"
    )
    created = w.json(
        "--profile",
        "alice",
        "-y",
        "room",
        "create",
        str(sup.AGENTS / "default-scope"),
        "--query-agent",
        str(report),
        "--no-llm",
    )
    out = w.json("--profile", "bob", "-y", "room", "ask", created["link"], "q3 numbers", "--fetch")
    assert out["attestation_ok"] is True
    assert out["artifacts"] == ["report.txt"]
    saved = Path(out["fetched"][0]["path"])
    assert saved == Path("hivemind-artifacts") / out["run_id"] / "report.txt"
    assert saved.read_text() == "report for: q3 numbers"
    again = w.json(
        "runs",
        "artifacts",
        out["run_id"],
        "--room",
        created["link"],
        "--fetch",
        str(tmp_path / "copy"),
    )
    assert (tmp_path / "copy" / out["run_id"] / "report.txt").read_text() == saved.read_text()
    assert again["fetched"][0]["size"] == len("report for: q3 numbers")


def test_progress_line_shows_stage_elapsed_and_budget():
    import io

    from hmctl._cmd_room import _Progress
    from hmctl._runtime import Runtime
    from hmctl.client import RunBudget
    from rich.console import Console

    buf = io.StringIO()
    rt = Runtime(console=Console(file=buf, force_terminal=True, width=120))
    run = {
        "run_id": "abc123abc123",
        "status": "running",
        "scope_started_at": 1.0,
        "scope_ended_at": 2.0,
        "query_started_at": 2.0,
        "usage": {"llm_calls": 3, "total_tokens": 1200},
    }
    with _Progress(rt, RunBudget(max_llm_calls=60, max_tokens=5000)) as progress:
        progress.update(run, 7.4)
        progress._live.refresh()
    text = buf.getvalue()
    assert "query" in text
    assert "7s" in text
    assert "LLM calls 3/60" in text
    assert "tokens 1200/5000" in text
    quiet = Runtime(json_output=True, console=Console(file=io.StringIO(), force_terminal=True))
    assert _Progress(quiet, RunBudget())._live is None


def test_json_mode_reports_errors_as_json(ready):
    w = ready
    link = w.create_room()["link"]
    forged = link.replace("owner_pubkey=", "owner_pubkey=A").replace("%3D", "", 1)
    result = w.run("--json", "--profile", "bob", "room", "inspect", forged)
    assert result.exit_code == 2  # the link itself is malformed now
    assert json.loads(result.stdout)["exit_code"] == 2
    result = w.run("--json", "--profile", "bob", "room", "ask", link, "hi")
    assert result.exit_code == 9  # JSON mode never prompts: not accepted yet
    body = json.loads(result.stdout)
    assert body["exit_code"] == 9
    assert "not accepted" in body["error"]
    assert "room accept" in body["hint"]


def test_private_paths_stay_out_of_the_attested_digest(ready):
    w = ready
    created = w.json(
        "--profile",
        "alice",
        "-y",
        "room",
        "create",
        str(sup.AGENTS / "default-scope"),
        "--query-agent",
        str(sup.AGENTS / "dinner-negotiation"),
        "--query-private",
        "bob.json",
        "--no-llm",
    )
    room = w.json("--profile", "bob", "room", "inspect", created["link"])
    query = room["agents"]["query"]
    assert query["files_digest_sha256"] != query["attested_files_digest_sha256"]
    files = w.json("--profile", "alice", "agents", "files", query["agent_id"])["files"]
    assert {f["path"]: f["attestable"] for f in files}["bob.json"] is False


def test_add_data_from_a_file_with_metadata(ready, tmp_path):
    w = ready
    room_id = w.create_room()["room_id"]
    note = tmp_path / "note.md"
    note.write_text("Quarterly numbers: up 4%.\n")
    w.ok(
        "--profile",
        "alice",
        "room",
        "add-data",
        room_id,
        "--file",
        str(note),
        "--meta",
        "kind=report",
        "--meta",
        "q=3",
    )
    items = w.json("--profile", "alice", "room", "data", room_id, "--show-text")["items"]
    assert [(i["text"], i["metadata"]) for i in items] == [
        (note.read_text(), {"kind": "report", "q": "3"})
    ]
    both = w.run("--profile", "alice", "room", "add-data", room_id, "x", "--file", str(note))
    assert both.exit_code == 2
    bad_meta = w.run("--profile", "alice", "room", "add-data", room_id, "x", "--meta", "novalue")
    assert bad_meta.exit_code == 2
    assert "KEY=VALUE" in bad_meta.stderr
    assert "text" not in w.json("--profile", "alice", "room", "data", room_id)["items"][0]


def test_oversized_answers_are_not_read_to_the_end(ready):
    from hmctl.client import NetworkFailure, RoomApi

    with RoomApi(ready.url, max_response_bytes=64) as api, pytest.raises(NetworkFailure) as caught:
        api.get("/openapi.json")
    assert "more than 64 bytes" in caught.value.message
    with RoomApi(ready.url) as api:
        assert "paths" in api.get("/openapi.json")


def test_trust_hash_pins_exactly_one_compose_hash(world, monkeypatch):
    world.trust_dev_root()
    monkeypatch.setenv("HIVEMIND_TRUST_HASH", "ab" * 32)
    wrong = world.run("trust", "attest", "--service", world.url)
    assert wrong.exit_code == 9
    assert "HIVEMIND_TRUST_HASH" in wrong.stderr
    assert world.json("trust", "show")["services"] == {}
    live = wrong.stderr.split("runs compose hash ")[1].split(",")[0]
    assert len(live) == 64
    monkeypatch.setenv("HIVEMIND_TRUST_HASH", live)
    assert world.json("trust", "attest", "--service", world.url)["compose_hash"] == live


def test_replayed_or_edited_attestation_is_invalid(ready):
    from hmctl._room_base import translate_client_error
    from hmctl.client import AttestationInvalid, LocalState, RoomApi, TrustOptions, verify_service

    real = httpx.HTTPTransport()

    class Replay(httpx.BaseTransport):  # answers every nonce with the first document it saw
        first = None

        def handle_request(self, request):
            response = real.handle_request(request)
            response.read()
            if request.url.path == "/v1/attestation":
                if Replay.first is None:
                    Replay.first = response.content
                return httpx.Response(200, content=Replay.first)
            return response

    api = RoomApi(ready.url, transport=Replay())
    with api:
        verify_service(api, LocalState(), TrustOptions(assume_yes=True))  # fresh: fine
        with pytest.raises(AttestationInvalid) as caught:
            verify_service(api, LocalState(), TrustOptions(assume_yes=True))  # replayed
    real.close()
    assert "nonce" in caught.value.message
    assert translate_client_error(caught.value).exit_code == 11


def test_owner_asks_own_room_by_id_without_acceptance(ready):
    w = ready
    room_id = w.create_room()["room_id"]
    w.ok("--profile", "alice", "room", "add-data", room_id, "Owner-only note")
    out = w.json("--profile", "alice", "room", "ask", room_id, "What do the notes say?")
    assert out["attestation_ok"] is True
    assert "Owner-only note" in out["output"]
    other = w.run("--profile", "bob", "room", "ask", room_id, "hi")
    assert other.exit_code == 2  # Bob has no owner key for a bare id: he needs a link
    assert "hmroom://" in other.stderr


# -- the profile key stays with its own service (spec 13.4 item 35) ----------------


class _Recording(httpx.BaseTransport):
    """The real transport, noting which paths carried a payer key."""

    def __init__(self) -> None:
        self.real = httpx.HTTPTransport()
        self.seen: list[tuple[str, bool]] = []

    def handle_request(self, request):
        self.seen.append((request.url.path, "x-hivemind-api-key" in request.headers))
        return self.real.handle_request(request)


def test_payer_key_goes_only_with_run_routes_after_verification(ready):
    from hmctl.client import LocalState, RoomApi, TrustOptions, resolve_target, verify_room
    from hmctl.client.runs import RunBudget, submit_run, wait_for_run

    created = ready.create_room()
    state = LocalState()
    bob = state.load_profile("bob")
    target = resolve_target(state, bob, created["link"])
    assert target.payer_key == bob.api_key
    recording = _Recording()
    api = RoomApi(target.service, target.bearer, payer_key=target.payer_key, transport=recording)
    with api:
        verified = verify_room(
            api,
            state,
            TrustOptions(assume_yes=True),
            room_id=target.room_id,
            owner_pubkey_b64=target.owner_pubkey_b64,
        )
        before = list(recording.seen)
        run = submit_run(api, verified.room_id, "What do the notes say?", RunBudget())
        done = wait_for_run(api, run["run_id"], deadline_seconds=60, interval=0.2)
    recording.real.close()
    assert done["status"] == "completed", done.get("error")
    assert {p for p, _ in before} >= {"/v1/attestation", f"/v1/rooms/{target.room_id}/attest"}
    assert not any(carried for _, carried in before)  # nothing before the runs
    after = recording.seen[len(before) :]
    assert after  # run submission and polling
    assert all(carried for _, carried in after)


def test_link_to_another_service_never_gets_the_profile_key(ready):
    from hivemind_rooms.links import RoomLink
    from hmctl.client import LocalState, resolve_target
    from hmctl.client.rooms import same_service

    parsed = RoomLink.parse(ready.create_room()["link"])
    elsewhere = "http://127.0.0.1:9"  # discard port: nothing listens
    moved = RoomLink(
        parsed.room_id, elsewhere, parsed.token, parsed.owner_pubkey_b64, parsed.kind
    ).format()
    state = LocalState()
    bob = state.load_profile("bob")
    assert resolve_target(state, bob, moved).payer_key == ""
    assert resolve_target(state, bob, ready.create_room()["link"]).payer_key == bob.api_key
    refused = ready.run("--profile", "bob", "-y", "room", "ask", moved, "hi")
    assert refused.exit_code == 2
    assert "never sent to another service" in refused.stderr
    assert bob.api_key not in refused.stderr + refused.stdout
    assert same_service("http://127.0.0.1:8100/", "HTTP://127.0.0.1:8100")
    assert same_service("http://LocalHost", "http://localhost:80/")
    for other in ("https://127.0.0.1:8100", "http://127.0.0.1:8101", "http://127.0.0.1:8100/x"):
        assert not same_service("http://127.0.0.1:8100", other), other
    assert not same_service("not a url", "not a url")


# -- room trust, owner keys, profile output (spec 13 items 3, 4, 34) -----------------


def test_room_trust_ignores_compose_claims_outside_the_quote(ready):
    from hmctl.client import (
        LocalState,
        RoomApi,
        TrustOptions,
        TrustRefused,
        resolve_target,
        verify_room,
    )

    created = ready.create_room()
    allowed = "ab" * 32  # the only compose the room now admits; the live one differs
    pin = ("--mode", "pinned", "--compose", allowed)
    ready.ok("--profile", "alice", "room", "trust", created["room_id"], *pin)
    real = httpx.HTTPTransport()

    class Claims(httpx.BaseTransport):  # rewrites every compose claim of the room answer
        def handle_request(self, request):
            response = real.handle_request(request)
            response.read()
            if not request.url.path.endswith("/attest"):
                return response
            body = json.loads(response.content)
            body["compose_hash"] = allowed
            body["attestation"]["compose_hash"] = allowed
            body["attestation"]["attestation"]["compose_hash"] = allowed
            return httpx.Response(200, json=body)

    state = LocalState()
    target = resolve_target(state, state.load_profile("bob"), created["link"])
    api = RoomApi(target.service, target.bearer, transport=Claims())
    try:
        with api, pytest.raises(TrustRefused) as info:
            verify_room(
                api,
                state,
                TrustOptions(assume_yes=True),
                room_id=target.room_id,
                owner_pubkey_b64=target.owner_pubkey_b64,
            )
    finally:
        real.close()
    assert "does not allow the live compose hash" in info.value.message
    assert allowed not in info.value.message


def test_the_service_never_holds_the_owner_signing_key(ready):
    import base64

    from hmctl.client import LocalState

    ready.create_room()
    owner = LocalState().owner_key("alice")
    assert owner is not None
    seed = owner.export_seed()
    data_dir = ready.server.settings.data_dir
    stored = b"".join(p.read_bytes() for p in sorted(data_dir.rglob("*")) if p.is_file())
    assert owner.public_key_b64().encode() in stored  # the search does find what is there
    for form in (
        seed,
        seed.hex().encode(),
        base64.b64encode(seed),
        base64.urlsafe_b64encode(seed).rstrip(b"="),
    ):
        assert form not in stored


def test_profile_show_masks_the_key(ready):
    from hmctl.client import LocalState

    key = LocalState().load_profile("alice").api_key
    for args in (("profile", "show"), ("profile", "list"), ("--json", "profile", "show")):
        shown = ready.ok("--profile", "alice", *args)
        assert key not in shown.stdout + shown.stderr, args
    full = ready.json("--profile", "alice", "profile", "show", "--show-key")
    assert full["api_key"] == key


def test_a_participants_model_is_expected_on_the_query_stage_only():
    """The service keeps the operator's scope and mediator models for participants."""
    from hmctl._cmd_room import _pinned_models

    assert _pinned_models("m", owner=True) == {"scope": "m", "query": "m", "mediator": "m"}
    assert _pinned_models("m", owner=False) == {"query": "m"}
    assert _pinned_models(None, owner=False) == {}
