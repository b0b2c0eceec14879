"""Spec §13 weaknesses of the trust, identity and client parts, mapped to the tests of each fix.

Paths are relative to ``packages/``; a bare test name lives in this module.

13.1 / 13.2
#1  debug trace leaks data past the scope function and the mediator: there is no
    debug trace (usage keeps counts, never tool arguments or results), and an owner
    sees no payload of a participant's ``querier_only`` run:
    hivemind-rooms/tests/test_pipeline_api.py::test_owner_run_scoped_and_mediated,
    test_usage_of_a_run_holds_counts_never_data,
    hmctl/tests/test_room_cli.py::test_ask_verifies_everything_and_prints_the_answer
#2  an impersonating TD satisfies the client (mr_config_id trusted, no measurement
    pins, no RTMR3 replay, no debug check, run-signer key and nonce unbound, key
    from an unverified fetch): hivemind-rooms/tests/test_attestation_verify.py::
    test_tdx_measurement_policy, test_event_log_must_replay,
    test_compose_claims_must_match_the_quote, test_swapped_run_signer_or_version_refused,
    test_nonce_binding, test_tls_binding, test_tdx_without_collateral_fails_closed;
    hivemind-rooms/tests/test_attestation_run.py::test_signer_key_must_be_the_attested_one;
    hmctl/tests/test_room_cli.py::test_replayed_or_edited_attestation_is_invalid
#3  room trust checked against an unverified compose hash:
    hivemind-rooms/tests/test_manifest.py::test_room_trust_uses_the_verified_compose_hash,
    hmctl/tests/test_room_cli.py::test_room_trust_ignores_compose_claims_outside_the_quote,
    hmctl/tests/test_room_cli.py::test_trust_update_needs_new_acceptance
#4  owner signing keys live server-side: owner Ed25519 keys are made and kept by
    the client, the service stores the public key only:
    hmctl/tests/test_room_cli.py::test_the_service_never_holds_the_owner_signing_key,
    hivemind-rooms/tests/test_api_rooms.py::test_room_registration_is_checked,
    hivemind-rooms/tests/test_manifest.py::test_trust_update_by_other_key_rejected
#7  share links and invites over-exposed (every room listed, every table's schema;
    here also the tenant's table count in ``/v1/health``):
    test_invite_and_share_link_see_only_their_room,
    hivemind-rooms/tests/test_api_rooms.py::test_tables_and_owner_sql,
    hmctl/tests/test_room_share.py::test_share_link_reaches_only_its_own_room
#8  a warm room key serves any caller with a wrap row (admin key reset):
    hivemind-rooms/tests/test_api_rooms.py::test_admin_key_reset_does_not_inherit_open_rooms
#9  key rotation corrupts the seal, the room wraps and later trust updates:
    hivemind-rooms/tests/test_api_rooms.py::test_key_rotation_keeps_seal_and_rooms_usable,
    test_trust_update_after_key_rotation_and_restart
#13 the manifest binds agent ids, not code: agent ids are drawn at random per
    upload (no shared built-in ids), an agent is immutable and cannot be deleted
    while a live room names it, and every run attestation carries each stage's
    digest, which the client checks against the digest it inspected:
    test_agent_ids_are_never_reused_and_live_agents_stay,
    hivemind-rooms/tests/test_api_rooms.py::test_trust_update_and_revocation,
    hivemind-rooms/tests/test_attestation_run.py::test_every_field_is_checked_against_expectations,
    hmctl/tests/test_room_cli.py::test_ask_with_an_uploaded_agent_verifies_its_digest.
    Not covered here: the manifest (v1) names agents by id only; agent base images
    belong to the runners.
#14 the same keys across upgrades, quotes replayable: the run signer is derived per
    compose hash and bound in REPORT_DATA, quotes answer the client's nonce, no
    governance contract is read from the bundle:
    hivemind-rooms/tests/test_attestation_run.py::
    test_signer_from_provider_depends_on_compose_and_hides_secret,
    hivemind-rooms/tests/test_attestation_service.py::
    test_nonce_bundle_verifies_and_binds_the_run_signer,
    hivemind-rooms/tests/test_attestation_verify.py::test_nonce_binding,
    hmctl/tests/test_room_cli.py::test_replayed_or_edited_attestation_is_invalid

13.4
#32 boolean environment flags are "non-empty = on":
    hmctl/tests/test_room_cli.py::test_boolean_environment_switches_are_strict,
    hivemind-rooms/tests/test_settings.py::test_booleans (server switches)
#33 keys sent before attestation; trust approve records an unverified hash; trust attest
    --reproduce starts from an unverified bundle. Fixed: ``signup`` verifies the
    service (fresh nonce, approved compose hash) before a key is made:
    hmctl/tests/test_room_cli.py::test_signup_credit_codes_and_balance;
    every command that sends a key (``init``, the ``admin`` commands, ``balance``,
    ``whoami``, ``redeem-credit``, ``agents``, ``room``) passes one service gate
    first, and the attestation request carries no key:
    hmctl/tests/test_room_gate.py::test_untrusted_dev_root_gets_no_key,
    test_unapproved_compose_hash_gets_no_key, test_one_invocation_verifies_its_service_once;
    the README walkthrough trusts the service first:
    hmctl/tests/test_room_walkthrough.py::test_readme_walkthrough_runs_verbatim;
    ``trust attest --raw/--reproduce`` show and rebuild the very document that
    answered the nonce: hmctl/tests/test_room_cli.py::test_trust_attest_reproduces_the_dev_compose;
    a compose hash is only ever approved from a verified fresh quote (there is no
    ``trust approve``): hmctl/tests/test_room_cli.py::test_trust_hash_pins_exactly_one_compose_hash.
#34 profile files world-readable, keys printed: hmctl/tests/test_room_cli.py::
    test_state_files_are_private_and_profiles_switch, test_profile_show_masks_the_key.
    Not applicable: there is no ``admin hashes`` (no Ethereum key, no ``cast``).
#35 the profile key goes to whatever service a link names, and before verification:
    hmctl/tests/test_room_cli.py::test_link_to_another_service_never_gets_the_profile_key,
    hmctl/tests/test_room_cli.py::test_payer_key_goes_only_with_run_routes_after_verification
#36 the eval runner skips strict attestation: ``hmctl eval`` verifies the service
    (fresh nonce) before its admin key goes out and each run's signed attestation
    with ``room ask``'s own checks; a run that does not verify fails its scenario:
    hivemind-rooms/tests/test_eval.py::
    test_a_run_whose_attestation_does_not_verify_fails_its_scenario,
    test_an_unverified_service_gets_no_key_and_no_scenario,
    test_hmctl_eval_refuses_an_unverified_service
#37 no rate limit on signup and attestation: test_fresh_quotes_are_rate_limited_over_http,
    hivemind-rooms/tests/test_api_basics.py::test_signup_is_rate_limited,
    hivemind-rooms/tests/test_attestation_service.py::test_fresh_quotes_are_rate_limited

13.5 documentation drift (our docs say what the code does)
- ``GET /v1/healthz`` answers ``{"status": "ok", "version": ...}``:
  test_documented_answers_match (and the route's docstring, the OpenAPI summary).
- ``GET /v1/rooms/{id}/key`` reports the vault status, never a key: test_documented_answers_match.
- ``GET /v1/tenant/tokens`` includes revoked invites (documented so):
  hivemind-rooms/tests/test_api_rooms.py::test_token_revocation_by_prefix.
- the admin credit grant cannot debit (documented: "Grant"); a negative amount is
  refused: test_documented_answers_match.
- the scope function is named ``scope``:
  hivemind-rooms/tests/test_scope.py::test_static_rules_refuse.
- the 402 answer names the payer header, never a link form the CLI refuses:
  test_documented_answers_match.
- ``--memory-mb`` is documented for uploaded query agents only (docs/cli.md).
- query visibility of fixed rooms and ``admin tenants rename``: not applicable (the
  signed manifest states visibility; there is no database rename, renaming
  changes the display name only).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from hivemind_rooms.manifest import OwnerKey, sign_trust_update, verify_signed_manifest

_spec = importlib.util.spec_from_file_location(
    "api_support", Path(__file__).with_name("api_support.py")
)
sup = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sup)


def test_invite_and_share_link_see_only_their_room(tmp_path: Path) -> None:
    owner = OwnerKey.generate()
    with sup.client(tmp_path) as c:
        t = sup.new_tenant(c)
        key = sup.auth(t["api_key"])
        for table in ("visible", "private"):
            r = c.post(
                "/v1/tenant/sql", json={"sql": f"CREATE TABLE {table} (x TEXT)"}, headers=key
            )
            assert r.status_code == 200, r.text
        first = sup.make_room(c, t, owner, allowed_tables=["visible"])
        second = sup.make_room(c, t, owner, allowed_tables=["private"])
        share = c.post(f"/v1/rooms/{first['room_id']}/share-link", headers=key).json()
        owned = c.get("/v1/rooms", headers=key).json()["rooms"]
        assert {r["room_id"] for r in owned} == {first["room_id"], second["room_id"]}
        for holder in (first["token"], share["share_token"]):
            listed = c.get("/v1/rooms", headers=sup.auth(holder)).json()["rooms"]
            assert [r["room_id"] for r in listed] == [first["room_id"]]
        counts = {
            who: c.get("/v1/health", headers=sup.auth(cred)).json()["table_count"]
            for who, cred in (("owner", t["api_key"]), ("invite", first["token"]))
        }
        assert counts == {"owner": 2, "invite": 1}
        invite_schema = c.get("/v1/admin/schema", headers=sup.auth(first["token"])).json()
        assert {row["table_name"] for row in invite_schema["schema"]} == {"visible"}
        refused = c.get("/v1/admin/schema", headers=sup.auth(share["share_token"]))
        assert refused.status_code == 403
        assert "private" not in refused.text


def test_fresh_quotes_are_rate_limited_over_http(tmp_path: Path) -> None:
    with sup.client(tmp_path) as c:
        t = sup.new_tenant(c)
        room = sup.make_room(c, t, OwnerKey.generate())
        invite = sup.auth(room["token"])
        paths = ("/v1/attestation", f"/v1/rooms/{room['room_id']}/attest")
        codes = []
        for i in range(31):  # the default budget is 30 fresh quotes a minute, all routes together
            nonce = i.to_bytes(2, "big").hex() * 8
            codes.append(c.get(paths[i % 2], params={"nonce": nonce}, headers=invite).status_code)
        assert codes == [200] * 30 + [429]
        again = c.get(paths[1], params={"nonce": "ab" * 16}, headers=invite)
        assert again.status_code == 429
        assert "retry" in again.json()["detail"]
        # a plain bundle is served from the cache, without a new quote
        plain = c.get("/v1/attestation")
        assert plain.status_code == 200
        assert plain.json()["ready"] is True


def test_trust_update_after_key_rotation_and_restart(tmp_path: Path) -> None:
    owner = OwnerKey.generate()
    with sup.client(tmp_path) as c:
        t = sup.new_tenant(c)
        created = sup.make_room(c, t, owner)
        rid = created["room_id"]
        new = c.post("/v1/tenant/rotate-key", headers=sup.auth(t["api_key"])).json()["api_key"]
    with sup.client(tmp_path) as c:
        key = sup.auth(new)
        manifest = created["room"]["manifest"]
        update = sign_trust_update(
            manifest,
            owner,
            mode="pinned",
            allowed_composes=["ab" * 32],
            updated_at=manifest["created_at"] + 1,
        )
        r = c.post(f"/v1/rooms/{rid}/trust", json={"envelope": update}, headers=key)
        assert r.status_code == 200, r.text
        room = c.get(f"/v1/rooms/{rid}", headers=key)
        assert room.status_code == 200
        # the stored envelope still verifies against the owner's own key
        stored = c.get(f"/v1/rooms/{rid}/attest", headers=key).json()["room"]["envelope"]
        verified = verify_signed_manifest(stored, owner.public_key_b64(), expected_room_id=rid)
        assert verified["trust"]["mode"] == "pinned"
        # a rotated hmk_ is not a signing key: only the owner's own key updates the room
        other = OwnerKey.generate()
        claimed = {**verified, "owner_pubkey_b64": other.public_key_b64()}
        stranger = sign_trust_update(
            claimed, other, mode="operator_updates", updated_at=verified["created_at"] + 2
        )
        r = c.post(f"/v1/rooms/{rid}/trust", json={"envelope": stranger}, headers=key)
        assert r.status_code == 400


def test_agent_ids_are_never_reused_and_live_agents_stay(tmp_path: Path) -> None:
    with sup.client(tmp_path) as c:
        t = sup.new_tenant(c)
        key = sup.auth(t["api_key"])
        room = sup.make_room(c, t, OwnerKey.generate())
        scope = room["room"]["scope_agent_id"]
        seen = c.get(f"/v1/rooms/{room['room_id']}/attest", headers=key).json()["scope_agent"]
        # the same archive uploaded again is a new agent with a new id
        again = [sup.upload_agent(c, t["api_key"]).json()["agent_id"] for _ in range(3)]
        assert len({scope, *again}) == 4
        # a live room's agent cannot be swapped out from under it
        assert c.delete(f"/v1/room-agents/{scope}", headers=key).status_code == 409
        after = c.get(f"/v1/rooms/{room['room_id']}/attest", headers=key).json()["scope_agent"]
        assert after["agent_id"] == scope
        assert after["files_digest_sha256"] == seen["files_digest_sha256"]
        assert c.put(f"/v1/room-agents/{scope}", headers=key).status_code == 405


def test_usage_of_a_run_holds_counts_never_data(tmp_path: Path) -> None:
    rs = sup.load_sibling("test_pipeline_support")
    with rs.client(tmp_path) as c:
        t = rs.sup.new_tenant(c)
        rs.seed(c, t["api_key"])
        room = rs.make_room(c, t, policy="hide: email")
        run = rs.ask(c, room, t["api_key"], "who lives where?")
        assert run["status"] == "completed", run["error"]
        usage = json.dumps(run["usage"])
        # the scope stage read every column; none of it (nor any SQL) is kept with the run
        for fragment in ("example.org", "SELECT", "select", "CANARY", "rows"):
            assert fragment not in usage, fragment
        assert "debug_trace" not in run
        for stage in run["usage"]["stages"].values():
            assert all(isinstance(v, int) for v in stage["tool_call_counts"].values())


def test_documented_answers_match(tmp_path: Path) -> None:
    with sup.client(tmp_path) as c:
        health = c.get("/v1/healthz").json()
        assert set(health) == {"status", "version"}
        assert health["status"] == "ok"
        t, payer = sup.new_tenant(c, "owner"), sup.new_tenant(c, "payer")
        key = sup.auth(t["api_key"])
        room = sup.make_room(c, t, OwnerKey.generate(), mediator_agent_id="")
        status = c.get(f"/v1/rooms/{room['room_id']}/key", headers=key).json()
        assert set(status) == {"room_id", "open", "wrap_count", "item_count"}
        grant = f"/v1/admin/billing/{payer['tenant_id']}/credits"
        for amount in ("-1", "0"):
            r = c.post(grant, json={"amount_usd": amount}, headers=sup.admin_headers())
            assert r.status_code == 400, amount
        agent = sup.upload_agent(c, t["api_key"], agent_type="query").json()["agent_id"]
        r = c.post(
            f"/v1/rooms/{room['room_id']}/runs",
            json={"query": "hi", "query_agent_id": agent},
            headers=sup.auth(room["token"]),
        )
        assert r.status_code == 402
        assert "X-Hivemind-Api-Key" in r.json()["detail"]
        assert "share=" not in r.text
        openapi = c.get("/openapi.json").json()
        summary = openapi["paths"]["/v1/rooms/{room_id}/key"]["get"]["summary"]
        assert "never the key" in summary
