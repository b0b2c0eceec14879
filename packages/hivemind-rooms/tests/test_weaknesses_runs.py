"""Spec §13 weaknesses of runs, the pipeline and its sandboxes, with the tests proving each fix.

#5  participant agents re-run by others (owner pins Bob's uploaded agent):
    test_agents.py::test_dinner_negotiation_with_a_sealed_participant_agent
#6  admin sees tenant data: test_admin_run_views_hold_no_tenant_data,
    test_api_basics.py::test_postgres_only_and_legacy_routes
#10 plaintext at rest. Run prompt, output and error are sealed under the room key:
    test_run_text_sealing_binds_room_run_and_field,
    test_run_prompt_output_and_error_are_sealed_at_rest,
    test_a_moved_sealed_field_is_refused, test_revoked_room_runs_keep_metadata_only,
    test_rows_left_in_clear_are_sealed_once_the_room_opens,
    test_room_closed_under_a_running_run_stores_no_output; artifacts:
    test_artifacts_sealed.py (all); vault items:
    test_api_rooms.py::test_vault_data_restart_property; credentials and share tokens hashed:
    test_api_rooms.py::test_credentials_are_not_stored_in_plaintext,
    test_share_link_run_reads_the_room_vault. Usage holds counts, models and timings,
    never data: test_pipeline_api.py::test_owner_run_scoped_and_mediated. Still in clear:
    the attestation (hashes of prompt and output), room and agent metadata, the tenant's own
    SQL tables (owner data the owner queries with the owner key, not sealed here)
#11 run attestation contents (mediator id/digest, models, prompt/output/error hashes,
    manifest hash covering tables and policy, status, freshness):
    test_pipeline_api.py::test_run_attestation_verifies_and_tampering_fails,
    test_attestation_run.py::test_every_field_is_checked_against_expectations,
    test_attestation_run.py::test_freshness; artifact name/sha256/size records (schema v3):
    test_attestation_run.py::test_a_tampered_artifact_hash_fails_verification,
    test_artifacts_sealed.py::test_run_attestation_signs_the_artifact_hash, and hmctl
    refuses altered or unsigned downloads: hmctl/tests/test_room_artifact_hashes.py
#12 model choice belongs to the asker: test_participant_cannot_choose_the_guarding_models;
    agent-injected ``model``/``extra_body``:
    test_bridge.py::test_proxy_pins_model_and_strips_unknown_parameters,
    test_bridge.py::test_http_upstream_sends_pinned_model_with_operator_key
#15 share-link runs on rooms with vault data: test_share_link_run_reads_the_room_vault,
    test_artifacts_sealed.py::test_artifact_is_sealed_at_rest_and_sealed_again_after_restart
#16 scope stage cannot run SQL: test_scope_stage_runs_sql_over_the_allowlist_only
#17 default query agents ignore vault items: test_share_link_run_reads_the_room_vault,
    hmctl tests/test_room_cli.py::test_ask_verifies_everything_and_prints_the_answer
#18 SQL read-only-ness by parsing over a shared privileged connection:
    test_bridge.py::test_allowed_reads, test_bridge.py::test_refused_statements_are_opaque,
    test_bridge.py::test_runaway_query_is_interrupted (read-only connection + engine authorizer)
#19 scope_fn isolation without OS limits: test_scope_function_is_bounded_by_os_limits,
    test_scope.py::test_worker_refuses_network_files_and_processes_even_past_the_rules,
    test_scope.py::test_endless_loop_is_killed_and_denied
#20 agents share one network with the core: test_runner_sandbox.py::test_no_network,
    test_runner_sandbox.py::test_agent_talks_to_the_bridge_socket (per-run unix socket only)
#21 inputs in environment variables: test_runner_sandbox.py::test_environment_holds_no_inputs,
    test_pipeline_api.py::test_large_raw_output_reaches_the_mediator_intact
#22 no recovery after restart, non-atomic hold:
    test_pipeline_api.py::test_interrupted_run_is_failed_and_its_hold_released,
    test_billing.py::test_concurrent_holds_cannot_overdraw,
    test_billing.py::test_orphan_holds_are_released
#23 tenant LRU eviction drops room keys: test_room_keys_outlive_any_number_of_tenants
    (keys live in the process keyring, never in a per-tenant cache)
#24 builds need network; binary agent files mangled: test_binary_agent_files_run_byte_exact,
    test_runner_units.py::test_only_the_agent_base_is_accepted,
    test_agents.py::test_sdk_and_agents_import_only_the_standard_library (bundled agents need
    no package install), test_runner_sandbox.py::test_docker_build_failures_and_no_build_network
#25 TDX quote offsets assume v4: the quote is parsed by dcap-qvl (attestation/dcap.py), no
    hand-written offsets; test_attestation_verify.py::test_tdx_quote_that_is_not_a_quote_is_refused
    (no real TDX quote is reachable here, so no v5 vector)
#26 TCB statuses other than UpToDate accepted:
    test_attestation_verify.py::test_tdx_measurement_policy (OutOfDate and Revoked refused)
#27 invites are shared bearer secrets: test_api_sharing.py::test_per_participant_invites (one
    invite per participant, revocable alone); share-link holders see only runs they paid for:
    test_share_link_holders_see_only_their_own_runs,
    test_artifacts_sealed.py::test_artifact_is_sealed_at_rest_and_sealed_again_after_restart;
    an invite may carry an expiry and is refused like a revoked one after it:
    test_invite_expiry.py::test_invite_works_until_it_expires_then_is_refused_like_a_revoked_one
    (expiry stays optional: an invite minted without one still never expires)
#28 sweep-broken deletes by default: test_api_basics.py::test_postgres_only_and_legacy_routes
    (the server defaults to a dry run)
#29 retention keeps prompt, usage and attestation forever: test_expired_runs_lose_their_payload
#30 pinned rooms from the CLI: not in these parts (hmctl and the manifest); the CLI takes
    ``room create --trust-mode pinned --allowed-compose HASH`` and refuses pinned without a
    hash with a hint: hmctl
    tests/test_room_cli.py::test_room_create_options_reach_the_signed_manifest
#31 scope policy name mismatch, empty policy passes rows through: the policy reaches the
    scope agent through the bridge inputs under the one name ``policy``
    (test_agents.py::test_llm_scope_agent_and_its_fallback sees it in the scope model's prompt),
    and an empty policy still hides identifier columns:
    test_agents.py::test_default_scope_function, test_empty_policy_room_still_hides_identifiers
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import time
from pathlib import Path

import pytest
import trio
from hivemind_rooms.attestation import text_hash
from hivemind_rooms.pipeline import (
    ROOM_CLOSED,
    is_sealed_text,
    open_run_text,
    scrub_expired_runs,
    seal_clear_runs,
    seal_run_text,
    write_agent_dir,
)
from hivemind_rooms.scope import ScopeLimits, apply_scope
from hivemind_rooms.vault import KeyScope, VaultDecryptError, new_secret_key

_spec = importlib.util.spec_from_file_location(
    "test_pipeline_support", Path(__file__).with_name("test_pipeline_support.py")
)
rs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rs)
sup = rs.sup

PROMPT_MARK = "PROMPT-MARKER-5d1c"
VAULT_MARK = "VAULT-MARKER-a93e"
ERROR_MARK = "ERROR-MARKER-77c1"
# the marker is assembled at run time: the agent's stored source never holds it
FAILING = "import sys\nsys.stderr.write('ERROR-MARKER' + '-77c1 broke')\nsys.exit(3)\n"


def _store(c, tenant: dict):
    return c.app.state.services.storage.tenant(tenant["tenant_id"])


def _add_note(c, tenant: dict, room_id: str, text: str) -> None:
    r = c.post(
        f"/v1/rooms/{room_id}/data",
        json={"text": text, "metadata": {"src": "test"}},
        headers=sup.auth(tenant["api_key"]),
    )
    assert r.status_code == 200, r.text


# -- #10 plaintext at rest -----------------------------------------------------------


def test_run_text_sealing_binds_room_run_and_field() -> None:
    key = new_secret_key()
    scope = KeyScope.room("t_000000000001", "room_000000000001")
    stored = seal_run_text(key, scope, "run1", "output", "the answer is 42")
    assert is_sealed_text(stored)
    assert "answer" not in stored
    assert open_run_text(key, scope, "run1", "output", stored) == "the answer is 42"
    other_room = KeyScope.room("t_000000000001", "room_000000000002")
    other_tenant = KeyScope.room("t_000000000002", "room_000000000001")
    for args in [
        (key, scope, "run2", "output", stored),  # another run
        (key, scope, "run1", "prompt", stored),  # another column
        (key, other_room, "run1", "output", stored),
        (key, other_tenant, "run1", "output", stored),
        (new_secret_key(), scope, "run1", "output", stored),
        (key, scope, "run1", "output", "the answer is 42"),  # clear text is not sealed text
        (key, scope, "run1", "output", stored[:-4]),
        (key, scope, "run1", "output", stored + "!"),
    ]:
        with pytest.raises(VaultDecryptError):
            open_run_text(*args)
    with pytest.raises(ValueError):
        seal_run_text(key, scope, "run1", "usage_json", "x")


def test_run_prompt_output_and_error_are_sealed_at_rest(tmp_path: Path) -> None:
    prompt = f"{PROMPT_MARK} what do the notes say?"
    with rs.client(tmp_path) as c:
        t = sup.new_tenant(c)
        rs.seed(c, t["api_key"])
        owner = sup.auth(t["api_key"])
        room = rs.make_room(c, t, mediator=None)
        _add_note(c, t, room["room_id"], f"note {VAULT_MARK}")
        run = rs.ask(c, room, t["api_key"], prompt)
        assert run["status"] == "completed", run["error"]
        assert run["prompt"] == prompt
        assert PROMPT_MARK in run["output"]
        assert VAULT_MARK in run["output"]
        assert run["payload_sealed"] is False
        body = run["attestation"]["body"]  # signed over the plaintext, verifiable after opening
        assert body["prompt_hash"] == text_hash(run["prompt"])
        assert body["output_hash"] == text_hash(run["output"])
        row = _store(c, t).get_run(run["run_id"])
        assert is_sealed_text(row["prompt"])
        assert is_sealed_text(row["output"])
        # a failed run's error is sealed too
        bad = rs.custom_agent(c, t["api_key"], tmp_path, "failing-query", "query", FAILING)
        failing = rs.room_with(c, t, scope_id=room["scope_id"], query_id=bad)
        failed = rs.ask(c, failing, t["api_key"], "anything")
        assert failed["status"] == "failed"
        assert ERROR_MARK in failed["error"]  # unmediated: the querier may see its agent's error
        assert is_sealed_text(_store(c, t).get_run(failed["run_id"])["error"])
    on_disk = sup.all_bytes(tmp_path)
    assert PROMPT_MARK.encode() not in on_disk
    assert VAULT_MARK.encode() not in on_disk
    assert ERROR_MARK.encode() not in on_disk
    with rs.client(tmp_path) as c:  # a restart: nothing of the run reads until the room opens
        r = c.get(f"/v1/runs/{run['run_id']}", headers=owner)
        assert r.status_code == 503
        assert r.json()["error"] == "room_sealed"
        assert PROMPT_MARK not in r.text
        listed = {x["run_id"]: x for x in c.get("/v1/runs", headers=owner).json()}
        assert listed[run["run_id"]]["status"] == "completed"  # metadata stays readable
        assert listed[run["run_id"]]["payload_sealed"] is True
        assert (listed[run["run_id"]]["prompt"], listed[run["run_id"]]["output"]) == (None, None)
        assert c.post(f"/v1/rooms/{room['room_id']}/open", headers=owner).status_code == 200
        opened = c.get(f"/v1/runs/{run['run_id']}", headers=owner).json()
        assert (opened["prompt"], opened["output"]) == (prompt, run["output"])
        listed = {x["run_id"]: x for x in c.get("/v1/runs", headers=owner).json()}
        assert listed[run["run_id"]]["output"] == run["output"]
        # the other room stays sealed: its run lists with a null error
        assert listed[failed["run_id"]]["error"] is None
        assert listed[failed["run_id"]]["payload_sealed"] is True


def test_a_moved_sealed_field_is_refused(tmp_path: Path) -> None:
    with rs.client(tmp_path) as c:
        t = sup.new_tenant(c)
        rs.seed(c, t["api_key"])
        room = rs.make_room(c, t, mediator=None)
        first = rs.ask(c, room, t["api_key"], "first question")
        second = rs.ask(c, room, t["api_key"], "second question")
        store = _store(c, t)
        moved = store.get_run(first["run_id"])["output"]
        store.file.execute(
            "UPDATE _hivemind_query_runs SET output = ? WHERE run_id = ?",
            (moved, second["run_id"]),
        )
        r = c.get(f"/v1/runs/{second['run_id']}", headers=sup.auth(t["api_key"]))
        assert r.status_code == 409
        assert r.json() == {
            "detail": "the stored run failed authentication",
            "error": "run_unreadable",
        }
        assert "first question" not in r.text


def test_revoked_room_runs_keep_metadata_only(tmp_path: Path) -> None:
    with rs.client(tmp_path) as c:
        t = sup.new_tenant(c)
        rs.seed(c, t["api_key"])
        owner = sup.auth(t["api_key"])
        room = rs.make_room(c, t, mediator=None)
        run = rs.ask(c, room, t["api_key"], PROMPT_MARK)
        assert c.delete(f"/v1/rooms/{room['room_id']}", headers=owner).status_code == 200
        gone = c.get(f"/v1/runs/{run['run_id']}", headers=owner)
        assert gone.status_code == 200, gone.text
        assert gone.json()["status"] == "completed"
        assert gone.json()["payload_sealed"] is True
        assert (gone.json()["prompt"], gone.json()["output"]) == (None, None)
        assert PROMPT_MARK not in gone.text


def test_rows_left_in_clear_are_sealed_once_the_room_opens(tmp_path: Path) -> None:
    legacy = {"prompt": PROMPT_MARK, "output": f"answer {VAULT_MARK}", "error": None}
    with rs.client(tmp_path) as c:
        t = sup.new_tenant(c)
        rs.seed(c, t["api_key"])
        owner = sup.auth(t["api_key"])
        room = rs.make_room(c, t, mediator=None)
        run = rs.ask(c, room, t["api_key"], "a question")
        store = _store(c, t)
        store.file.execute(  # as an earlier version stored it
            "UPDATE _hivemind_query_runs SET prompt = ?, output = ?, error = ? WHERE run_id = ?",
            (*legacy.values(), run["run_id"]),
        )
    with rs.client(tmp_path) as c:  # a restart: the room key is not open, nothing is sealed
        services = c.app.state.services
        assert seal_clear_runs(services) == 0
        assert _store(c, t).get_run(run["run_id"])["output"] == legacy["output"]
        assert c.post(f"/v1/rooms/{room['room_id']}/open", headers=owner).status_code == 200
        assert seal_clear_runs(services) in (0, 1)  # 0 if the engine's own sweep came first
        assert seal_clear_runs(services) == 0
        row = _store(c, t).get_run(run["run_id"])
        assert is_sealed_text(row["prompt"])
        assert is_sealed_text(row["output"])
        assert row["error"] is None
        opened = c.get(f"/v1/runs/{run['run_id']}", headers=owner).json()
        assert (opened["prompt"], opened["output"]) == (legacy["prompt"], legacy["output"])
        assert VAULT_MARK not in json.dumps(row)


SLOW_QUERY = """import time
from hivemind_agent import Bridge
bridge = Bridge()
time.sleep(3)
bridge.finish("late answer " + bridge.inputs()["prompt"])
"""


def test_room_closed_under_a_running_run_stores_no_output(tmp_path: Path) -> None:
    with rs.client(tmp_path) as c:
        t = sup.new_tenant(c)
        rs.seed(c, t["api_key"])
        owner = sup.auth(t["api_key"])
        scope = rs.upload(c, t["api_key"], "default-scope", "scope")
        slow = rs.custom_agent(c, t["api_key"], tmp_path, "slow-query", "query", SLOW_QUERY)
        room = rs.room_with(c, t, scope_id=scope, query_id=slow)
        run_id = rs.submit(c, room, owner, PROMPT_MARK)
        deadline = time.monotonic() + 30
        while c.get(f"/v1/runs/{run_id}", headers=owner).json()["progress"] is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert c.delete(f"/v1/rooms/{room['room_id']}", headers=owner).status_code == 200
        run = rs.wait_run(c, owner, run_id)
        assert run["status"] == "failed"
        assert run["error"] == ROOM_CLOSED
        assert run["output"] is None
        row = _store(c, t).get_run(run_id)
        assert row["output"] is None
        assert PROMPT_MARK not in json.dumps(row)
    assert PROMPT_MARK.encode() not in sup.all_bytes(tmp_path)


# -- #6 admin views ------------------------------------------------------------------


def test_admin_run_views_hold_no_tenant_data(tmp_path: Path) -> None:
    hidden = ("prompt", "output", "error", "usage", "usage_json", "attestation")
    with rs.client(tmp_path) as c:
        t = sup.new_tenant(c)
        rs.seed(c, t["api_key"])
        room = rs.make_room(c, t, mediator=None)
        _add_note(c, t, room["room_id"], VAULT_MARK)
        run = rs.ask(c, room, t["api_key"], PROMPT_MARK)
        assert VAULT_MARK in run["output"]
        admin = sup.admin_headers()
        one = c.get(f"/v1/admin/runs/{run['run_id']}", headers=admin)
        many = c.get("/v1/admin/runs", headers=admin)
        assert one.status_code == many.status_code == 200
        assert one.json()["status"] == "completed"
        assert run["run_id"] in [r["run_id"] for r in many.json()["runs"]]
        for view in [one.json(), *many.json()["runs"]]:
            assert not set(hidden) & set(view)
        for text in (one.text, many.text):
            assert PROMPT_MARK not in text
            assert VAULT_MARK not in text


# -- #12 model choice ----------------------------------------------------------------


def test_participant_cannot_choose_the_guarding_models(tmp_path: Path) -> None:
    weak = "google/gemini-2.5-flash-lite"
    double = rs.TestDoubleProvider(lambda request: {"content": "fine"})
    with rs.client(tmp_path, upstream=double) as c:
        t, payer = sup.new_tenant(c, "owner"), sup.new_tenant(c, "payer")
        rs.seed(c, t["api_key"])
        room = rs.make_room(
            c, t, query="default-query-llm", mediator="default-mediator-llm",
            providers=("openrouter",),
        )  # fmt: skip
        paying = {**sup.auth(room["token"]), "X-Hivemind-Api-Key": payer["api_key"]}
        url = f"/v1/rooms/{room['room_id']}/runs"
        for field in ("mediator_model", "scope_model"):
            r = c.post(url, json={"query": "q", field: weak}, headers=paying)
            assert r.status_code == 403, r.text
        run_id = rs.submit(c, room, paying, "who lives in Lisbon?", model=weak)
        run = rs.wait_run(c, paying, run_id)
        assert run["status"] == "completed", run["error"]
        default = c.app.state.runs.config.default_model
        assert default != weak
        models = run["attestation"]["body"]["models"]
        assert models == {"scope": default, "query": weak, "mediator": default}
        assert double.requests[-1]["model"] == default  # the mediator's call
        assert weak in {r["model"] for r in double.requests}  # the query agent's calls
        # the owner still picks any stage's model
        owner_run = rs.ask(c, room, t["api_key"], "q", mediator_model=weak)
        assert owner_run["attestation"]["body"]["models"]["mediator"] == weak


# -- #15 #17 share links and vault data ------------------------------------------------


def _share(c, tenant: dict, room: dict, payer_key: str) -> dict[str, str]:
    r = c.post(f"/v1/rooms/{room['room_id']}/share-link", headers=sup.auth(tenant["api_key"]))
    assert r.status_code == 200, r.text
    return {**sup.auth(r.json()["share_token"]), "X-Hivemind-Api-Key": payer_key}


def test_share_link_run_reads_the_room_vault(tmp_path: Path) -> None:
    with rs.client(tmp_path) as c:
        t = sup.new_tenant(c)
        rs.seed(c, t["api_key"])
        room = rs.make_room(c, t)
        _add_note(c, t, room["room_id"], f"Ann is in band {VAULT_MARK}")
        share = _share(c, t, room, sup.new_tenant(c, "bob")["api_key"])
        run = rs.wait_run(c, share, rs.submit(c, room, share, "what do the notes say?"))
        assert run["status"] == "completed", run["error"]
        assert VAULT_MARK in run["output"]  # the default query agent reads the vault
        assert "@example.org" not in run["output"]
    token = share["Authorization"].removeprefix("Bearer ")
    assert token.startswith("hms_")
    stored = sup.all_bytes(tmp_path)
    assert token.encode() not in stored  # the share token is kept only as a hash
    assert token[4:].encode() not in stored
    assert VAULT_MARK.encode() not in stored


def test_share_link_holders_see_only_their_own_runs(tmp_path: Path) -> None:
    with rs.client(tmp_path) as c:
        t = sup.new_tenant(c)
        rs.seed(c, t["api_key"])
        room = rs.make_room(c, t)
        bob = _share(c, t, room, sup.new_tenant(c, "bob")["api_key"])
        carol = {**bob, "X-Hivemind-Api-Key": sup.new_tenant(c, "carol")["api_key"]}
        bobs = rs.submit(c, room, bob, "bob asks")
        carols = rs.submit(c, room, carol, "carol asks")
        rs.wait_run(c, bob, bobs), rs.wait_run(c, carol, carols)
        assert [r["run_id"] for r in c.get("/v1/runs", headers=bob).json()] == [bobs]
        assert [r["run_id"] for r in c.get("/v1/runs", headers=carol).json()] == [carols]
        assert c.get(f"/v1/runs/{bobs}", headers=carol).status_code == 404
        no_payer = {"Authorization": bob["Authorization"]}
        assert c.get("/v1/runs", headers=no_payer).json() == []


# -- #16 scope stage SQL --------------------------------------------------------------

SQL_SCOPE = """import json
from hivemind_agent import Bridge, BridgeError, column_scope_fn
bridge = Bridge()
rows = bridge.tool("execute_sql", sql="SELECT count(*) AS n FROM people")["rows"]
assert rows == [{"n": 3}], rows
try:
    bridge.tool("execute_sql", sql="SELECT * FROM secrets")
    raise SystemExit("the scope stage read a table outside the allowlist")
except BridgeError:
    pass
bridge.finish(json.dumps({"scope_fn": column_scope_fn(bridge.inputs()["policy"])}))
"""


def test_scope_stage_runs_sql_over_the_allowlist_only(tmp_path: Path) -> None:
    with rs.client(tmp_path) as c:
        t = sup.new_tenant(c)
        rs.seed(c, t["api_key"])
        scope = rs.custom_agent(c, t["api_key"], tmp_path, "sql-scope", "scope", SQL_SCOPE)
        query = rs.upload(c, t["api_key"], "default-query", "query")
        room = rs.room_with(c, t, scope_id=scope, query_id=query)
        run = rs.ask(c, room, t["api_key"], "who?")
        assert run["status"] == "completed", run["error"]
        assert run["usage"]["stages"]["scope"]["tool_call_counts"]["execute_sql"] == 2
        assert "Lisbon" in run["output"]
        assert "CANARY-OTHER-TABLE" not in run["output"]


# -- #19 scope function OS limits ---------------------------------------------------------


def body(lines: str) -> str:
    return "def scope(sql, params, rows):\n" + "\n".join("    " + x for x in lines.splitlines())


async def test_scope_function_is_bounded_by_os_limits() -> None:
    spin = body("n = 0\nwhile True:\n    n = n + 1")
    started = time.monotonic()
    # the wall clock would allow 60 s: the worker's own CPU rlimit stops it first
    with trio.fail_after(90):
        decision = await apply_scope(spin, "", [], [], limits=ScopeLimits(timeout_s=60, cpu_s=1))
    assert not decision.allow
    assert time.monotonic() - started < 20
    hog = body("x = 'a' * 200_000_000\nreturn {'allow': True, 'rows': [{'n': len(x)}]}")
    roomy = await apply_scope(hog, "", [], [], limits=ScopeLimits(timeout_s=60, memory_mb=1024))
    assert roomy.allow  # the same function fits a larger limit
    assert roomy.rows == [{"n": 200_000_000}]
    decision = await apply_scope(hog, "", [], [], limits=ScopeLimits(timeout_s=60, memory_mb=128))
    assert not decision.allow  # the address-space rlimit refuses the allocation


# -- #23 room keys and many tenants ---------------------------------------------------


def test_room_keys_outlive_any_number_of_tenants(tmp_path: Path) -> None:
    with rs.client(tmp_path) as c:
        t = sup.new_tenant(c)
        rs.seed(c, t["api_key"])
        room = rs.make_room(c, t, mediator=None)
        _add_note(c, t, room["room_id"], VAULT_MARK)
        for i in range(40):  # more tenants than any per-tenant cache upstream kept
            other = sup.new_tenant(c, f"t{i}")
            assert c.get("/v1/health", headers=sup.auth(other["api_key"])).status_code == 200
        r = c.get(f"/v1/rooms/{room['room_id']}/data", headers=sup.auth(t["api_key"]))
        assert r.status_code == 200, r.text
        assert [i["text"] for i in r.json()["items"]] == [VAULT_MARK]


# -- #24 binary agent files ---------------------------------------------------------------

BINARY = bytes(range(256)) * 3 + b"\xff\xfe\x80\xc3\x28"
BINARY_QUERY = """import hashlib
from pathlib import Path
from hivemind_agent import Bridge
bridge = Bridge()
data = (Path(__file__).parent / "blob.bin").read_bytes()
bridge.finish("blob " + hashlib.sha256(data).hexdigest() + " " + str(len(data)))
"""


def _binary_agent(tmp: Path) -> bytes:
    directory = tmp / "binary-agent"
    directory.mkdir()
    (directory / "Dockerfile").write_text(rs.DOCKERFILE)
    (directory / "main.py").write_text(BINARY_QUERY)
    (directory / "blob.bin").write_bytes(BINARY)
    return rs.pack.pack_agent(directory)


def test_binary_agent_files_run_byte_exact(tmp_path: Path) -> None:
    with rs.client(tmp_path) as c:
        t = sup.new_tenant(c)
        rs.seed(c, t["api_key"])
        data = {"name": "binary", "agent_type": "query", "inspection_mode": "full"}
        files = {"archive": ("agent.tar.gz", _binary_agent(tmp_path), "application/gzip")}
        r = c.post("/v1/room-agents", data=data, files=files, headers=sup.auth(t["api_key"]))
        assert r.status_code == 200, r.text
        agent_id = r.json()["agent_id"]
        dest = tmp_path / "written"
        services = c.app.state.services
        write_agent_dir(_store(c, t), t["tenant_id"], agent_id, services.keyring, dest)
        assert (dest / "blob.bin").read_bytes() == BINARY
        scope = rs.upload(c, t["api_key"], "default-scope", "scope")
        room = rs.room_with(c, t, scope_id=scope, query_id=agent_id)
        run = rs.ask(c, room, t["api_key"], "blob?")
        assert run["status"] == "completed", run["error"]
        assert run["output"] == f"blob {hashlib.sha256(BINARY).hexdigest()} {len(BINARY)}"


# -- #29 retention ---------------------------------------------------------------------


def test_expired_runs_lose_their_payload(tmp_path: Path) -> None:
    with rs.client(tmp_path) as c:
        t = sup.new_tenant(c)
        rs.seed(c, t["api_key"])
        owner = sup.auth(t["api_key"])
        room = rs.make_room(c, t, mediator=None)
        run = rs.ask(c, room, t["api_key"], PROMPT_MARK)
        services = c.app.state.services
        updated = _store(c, t).get_run(run["run_id"])["updated_at"]
        assert scrub_expired_runs(services, 3600, updated + 3540) == 0  # not yet expired
        kept = c.get(f"/v1/runs/{run['run_id']}", headers=owner).json()
        assert kept["prompt"] == PROMPT_MARK
        assert kept["usage"] is not None
        assert scrub_expired_runs(services, 3600, updated + 3601) >= 1
        assert scrub_expired_runs(services, 3600, updated + 3601) == 0  # once only
        row = _store(c, t).get_run(run["run_id"])
        for column in ("prompt", "output", "error", "usage_json", "attestation"):
            assert row[column] is None, column
        assert row["status"] == "completed"
        assert row["billing_status"] == run["billing_status"]
        scrubbed = c.get(f"/v1/runs/{run['run_id']}", headers=owner).json()
        assert (scrubbed["prompt"], scrubbed["output"], scrubbed["usage"]) == (None, None, None)
    # the engine applies it on its own sweep
    (tmp_path / "short").mkdir()
    with rs.client(tmp_path / "short", run_retention_s=1) as c:
        t = sup.new_tenant(c)
        rs.seed(c, t["api_key"])
        room = rs.make_room(c, t, mediator=None)
        run = rs.ask(c, room, t["api_key"], PROMPT_MARK)
        deadline = time.monotonic() + 20
        while _store(c, t).get_run(run["run_id"])["output"] is not None:
            assert time.monotonic() < deadline, "the sweep never scrubbed the run"
            time.sleep(0.1)


# -- #31 empty policy -------------------------------------------------------------------


def test_empty_policy_room_still_hides_identifiers(tmp_path: Path) -> None:
    with rs.client(tmp_path) as c:
        t = sup.new_tenant(c)
        rs.seed(c, t["api_key"])
        room = rs.make_room(c, t, policy="", mediator=None)
        run = rs.ask(c, room, t["api_key"], "SQL: SELECT * FROM people")
        assert run["status"] == "completed", run["error"]
        assert "Lisbon" in run["output"]
        assert "@example.org" not in run["output"]
