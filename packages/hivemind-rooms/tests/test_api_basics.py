from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from starlette.routing import Route

_spec = importlib.util.spec_from_file_location(
    "api_support", Path(__file__).with_name("api_support.py")
)
sup = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sup)


def test_healthz_and_openapi_cover_the_api(tmp_path: Path) -> None:
    with sup.client(tmp_path) as c:
        r = c.get("/v1/healthz")
        assert r.status_code == 200
        assert r.json()["status"] == "ok"
        doc = c.get("/openapi.json").json()
        assert doc["openapi"].startswith("3.")
        for path, method in [
            ("/v1/rooms", "post"),
            ("/v1/rooms/{room_id}/open", "post"),
            ("/v1/room-agents/{agent_id}/files/{path}", "get"),
            ("/v1/billing/credit-codes/redeem", "post"),
            ("/v1/admin/credit-codes/{code_id}/revoke", "post"),
            ("/v1/signup", "post"),
            ("/v1/runs/{run_id}", "get"),
            ("/v1/tenant/rotate-key", "post"),
            ("/openapi.json", "get"),
        ]:
            assert method in doc["paths"][path], path
        # OpenAPI documents the HTTP routes; the HiveMind websocket endpoints are not HTTP.
        app_paths = {r.path for r in c.app.routes if isinstance(r, Route)}
        assert len(doc["paths"]) == len(app_paths)


def test_unknown_route_and_method_are_json(tmp_path: Path) -> None:
    with sup.client(tmp_path) as c:
        r = c.get("/v1/nope")
        assert r.status_code == 404
        assert r.json() == {"detail": "Not Found"}
        r = c.put("/v1/healthz")
        assert r.status_code == 405
        assert "detail" in r.json()


def test_admin_routes_need_the_admin_key(tmp_path: Path) -> None:
    with sup.client(tmp_path, admin_key="") as c:
        r = c.get("/v1/admin/tenants", headers=sup.auth("anything-at-all-123456"))
        assert r.status_code == 503
    with sup.client(tmp_path) as c:
        assert c.get("/v1/admin/tenants").status_code == 401
        assert (
            c.get("/v1/admin/tenants", headers=sup.auth("wrong-key-0000000000")).status_code == 401
        )
        tenant = sup.new_tenant(c)
        # an owner key is not an admin key
        assert c.get("/v1/admin/tenants", headers=sup.auth(tenant["api_key"])).status_code == 401
        listed = c.get("/v1/admin/tenants", headers=sup.admin_headers()).json()["tenants"]
        assert [t["id"] for t in listed] == [tenant["tenant_id"]]
        # and the admin key is not an owner key
        assert c.get("/v1/health", headers=sup.admin_headers()).status_code == 401


def test_tenant_lifecycle(tmp_path: Path) -> None:
    with sup.client(tmp_path) as c:
        t = sup.new_tenant(c, "acme")
        assert t["tenant_id"].startswith("t_")
        assert t["api_key"].startswith("hmk_")
        who = c.get("/v1/whoami", headers=sup.auth(t["api_key"])).json()
        assert who["tenant_id"] == t["tenant_id"]
        assert who["role"] == "owner"
        assert who["name"] == "acme"
        r = c.post("/v1/admin/tenants", json={"name": "acme"}, headers=sup.admin_headers())
        assert r.status_code == 409
        r = c.post(
            f"/v1/admin/tenants/{t['tenant_id']}/rename",
            json={"name": "acme2"},
            headers=sup.admin_headers(),
        )
        assert r.status_code == 200
        assert r.json()["name"] == "acme2"
        assert "api_key_hash" not in r.json()
        reset = c.post(
            f"/v1/admin/tenants/{t['tenant_id']}/reset-key", json={}, headers=sup.admin_headers()
        ).json()
        assert c.get("/v1/whoami", headers=sup.auth(t["api_key"])).status_code == 401
        assert c.get("/v1/whoami", headers=sup.auth(reset["api_key"])).status_code == 200
        r = c.delete(f"/v1/admin/tenants/{t['tenant_id']}", headers=sup.admin_headers())
        assert r.status_code == 200
        assert c.get("/v1/whoami", headers=sup.auth(reset["api_key"])).status_code == 401
        assert not (tmp_path / "tenants" / f"{t['tenant_id']}.sqlite3").exists()
        r = c.delete(f"/v1/admin/tenants/{t['tenant_id']}", headers=sup.admin_headers())
        assert r.status_code == 404


def test_signup_switch_and_credit_codes(tmp_path: Path) -> None:
    with sup.client(tmp_path) as c:
        assert c.post("/v1/signup", json={"name": "x"}).status_code == 503
    with sup.client(tmp_path, self_serve_signup=True) as c:
        r = c.post("/v1/signup", json={"name": "bob", "credit_code": "hmcc_x"})
        assert r.status_code == 400
        assert "redeemed after signup" in r.json()["detail"]
        assert c.post("/v1/signup", json={"name": "  "}).status_code == 400
        bob = c.post("/v1/signup", json={"name": "bob"}).json()
        assert bob["balance_micro_usd"] == 0
        assert bob["api_key"].startswith("hmk_")
        code = c.post(
            "/v1/admin/credit-codes",
            json={"credit_usd": "2.50", "uses": 1, "expires_in_seconds": 3600},
            headers=sup.admin_headers(),
        ).json()
        assert code["code"].startswith("hmcc_")
        r = c.post(
            "/v1/billing/credit-codes/redeem",
            json={"code": code["code"]},
            headers=sup.auth(bob["api_key"]),
        )
        assert r.status_code == 200, r.text
        assert r.json()["balance_micro_usd"] == 2_500_000
        r = c.post(
            "/v1/billing/credit-codes/redeem",
            json={"credit_code": code["code"]},
            headers=sup.auth(bob["api_key"]),
        )
        assert r.status_code == 403
        statement = c.get("/v1/billing", headers=sup.auth(bob["api_key"])).json()
        assert statement["balance_micro_usd"] == 2_500_000
        assert [e["kind"] for e in statement["ledger"]] == ["credit_grant"]
        listed = c.get(
            "/v1/admin/credit-codes?include_revoked=true", headers=sup.admin_headers()
        ).json()["credit_codes"]
        assert listed[0]["redeemed_count"] == 1
        assert "code" not in listed[0]


def test_starter_code_on_signup(tmp_path: Path) -> None:
    with sup.client(tmp_path) as c:
        code = c.post(
            "/v1/admin/credit-codes",
            json={"credit_usd": "1", "max_redemptions": 1},
            headers=sup.admin_headers(),
        ).json()["code"]
    with sup.client(tmp_path, self_serve_signup=True, signup_starter_credit_code=code) as c:
        first = c.post("/v1/signup", json={"name": "a"}).json()
        second = c.post("/v1/signup", json={"name": "a"}).json()
        assert first["starter_credit_micro_usd"] == 1_000_000
        assert second["starter_credit_micro_usd"] == 0  # the code's single use is gone
        assert first["tenant_id"] != second["tenant_id"]


def test_admin_billing_grant_and_prices(tmp_path: Path) -> None:
    with sup.client(tmp_path, enforce_credits=True) as c:
        t = sup.new_tenant(c)
        h = sup.admin_headers()
        r = c.post(
            f"/v1/admin/billing/{t['tenant_id']}/credits",
            json={"amount_usd": "0", "note": "x"},
            headers=h,
        )
        assert r.status_code == 400
        r = c.post(
            f"/v1/admin/billing/{t['tenant_id']}/credits",
            json={"amount_usd": "1.25", "note": "welcome"},
            headers=h,
        )
        assert r.json()["balance_micro_usd"] == 1_250_000
        assert (
            c.post(
                "/v1/admin/billing/t_000000000000/credits", json={"amount_usd": "1"}, headers=h
            ).status_code
            == 404
        )
        accounts = c.get("/v1/admin/billing", headers=h).json()
        assert accounts["enforce_credits"] is True
        assert accounts["accounts"][0]["total_credit_micro_usd"] == 1_250_000
        r = c.post(
            "/v1/admin/billing/prices",
            json={
                "provider": "OpenRouter",
                "model": "acme/model-1",
                "prompt_usd_per_million": "0.5",
                "completion_usd_per_million": "1",
            },
            headers=h,
        )
        assert r.json()["prompt_microusd_per_mtok"] == 500_000
        assert r.json()["provider"] == "openrouter"
        assert (
            c.delete("/v1/admin/billing/prices/openrouter/acme/model-1", headers=h).status_code
            == 200
        )
        assert (
            c.delete("/v1/admin/billing/prices/openrouter/acme/model-1", headers=h).status_code
            == 404
        )
        ledger = c.get("/v1/admin/billing/ledger", headers=h).json()["ledger"]
        assert ledger[0]["metadata"] == {"note": "welcome"}


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/admin/tenants", b"{not json", 400),
        ("/v1/admin/tenants", b"[1, 2]", 422),
        ("/v1/admin/tenants", b'{"name": "a", "name": "b"}', 400),
        ("/v1/admin/tenants", b'{"name": "a", "admin": true}', 422),
        ("/v1/admin/tenants", b'{"name": 5}', 422),
        ("/v1/admin/tenants", b'{"name": "a", "allow_duplicate_name": 1}', 422),
        ("/v1/admin/tenants", b"{}", 422),
        ("/v1/admin/tenants", b"\xff\xfe", 400),
        ("/v1/admin/credit-codes", b'{"credit_usd": 1.5}', 422),
        ("/v1/admin/credit-codes", b'{"credit_usd": "-1"}', 400),
        ("/v1/admin/credit-codes", b'{"credit_usd": "1", "max_redemptions": 0}', 400),
        ("/v1/admin/credit-codes", b'{"credit_usd": "1", "expires_at": 5}', 400),
        ("/v1/admin/credit-codes", b'{"credit_usd": "1", "uses": true}', 422),
        ("/v1/admin/billing/prices", b'{"provider": "p", "model": "m"}', 422),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(tmp_path: Path, path, body, status) -> None:
    with sup.client(tmp_path) as c:
        sup.new_tenant(c)
        before = sup.db_state(tmp_path)
        r = c.post(
            path, content=body, headers={**sup.admin_headers(), "Content-Type": "application/json"}
        )
        assert r.status_code == status, r.text
        assert "detail" in r.json()
        assert sup.db_state(tmp_path) == before


def test_oversize_body_is_refused(tmp_path: Path) -> None:
    with sup.client(tmp_path, max_body_bytes=2048) as c:
        before = sup.db_state(tmp_path)
        r = c.post(
            "/v1/admin/tenants",
            content=b'{"name": "' + b"a" * 4096 + b'"}',
            headers={**sup.admin_headers(), "Content-Type": "application/json"},
        )
        assert r.status_code == 413
        assert sup.db_state(tmp_path) == before


def test_query_parameters_are_checked(tmp_path: Path) -> None:
    with sup.client(tmp_path) as c:
        t = sup.new_tenant(c)
        for q in ("limit=0", "limit=abc", "limit=101"):
            r = c.get(f"/v1/rooms?{q}", headers=sup.auth(t["api_key"]))
            assert r.status_code == 422, q


def test_register_tenant_adopts_an_existing_database(tmp_path: Path) -> None:
    h = sup.admin_headers()
    with sup.client(tmp_path) as c:
        t = sup.new_tenant(c, "old")
        c.post(
            "/v1/tenant/sql",
            json={"sql": "CREATE TABLE keep (x TEXT)"},
            headers=sup.auth(t["api_key"]),
        )
    db = tmp_path / "tenants" / f"{t['tenant_id']}.sqlite3"
    saved = db.read_bytes()  # the file is closed (and checkpointed) after shutdown
    with sup.client(tmp_path) as c:
        c.delete(f"/v1/admin/tenants/{t['tenant_id']}", headers=h)
        assert not db.exists()
        db.write_bytes(saved)
        r = c.post(
            "/v1/admin/tenants/register",
            json={"name": "old", "db_name": f"tenant_{t['tenant_id']}"},
            headers=h,
        )
        assert r.status_code == 200, r.text
        assert r.json()["adopted"] is True
        assert r.json()["tenant_id"] == t["tenant_id"]
        health = c.get("/v1/health", headers=sup.auth(r.json()["api_key"])).json()
        assert health["table_count"] == 1
        for body, status in [
            ({"name": "x", "db_name": "whatever"}, 400),
            ({"name": "x", "db_name": f"tenant_{t['tenant_id']}"}, 409),
            ({"name": "x", "db_name": "tenant_t_00000000000f", "api_key": "hmq_" + "a" * 43}, 400),
        ]:
            assert c.post("/v1/admin/tenants/register", json=body, headers=h).status_code == status


def test_postgres_only_and_legacy_routes(tmp_path: Path) -> None:
    with sup.client(tmp_path) as c:
        h = sup.admin_headers()
        assert c.post("/v1/admin/rename-database", json={}, headers=h).status_code == 501
        assert c.post("/v1/admin/migrate-to-roles", headers=h).status_code == 501
        r = c.post("/v1/admin/agents/sweep-broken", headers=h)
        assert r.json() == {"dry_run": True, "count": 0, "deleted": 0, "orphans": []}
        t = sup.new_tenant(c)
        assert c.get("/v1/tenants/compose-pin", headers=sup.auth(t["api_key"])).status_code == 410
        assert c.get("/v1/admin/runs/abcdefabcdef", headers=h).status_code == 404
        r = sup.upload_agent(c, t["api_key"])
        run = c.get(f"/v1/admin/runs/{r.json()['run_id']}", headers=h).json()
        assert run["tenant_id"] == t["tenant_id"]
        assert "output" not in run
        assert "prompt" not in run
        runs = c.get("/v1/admin/runs", headers=h).json()["runs"]
        assert [x["run_id"] for x in runs] == [r.json()["run_id"]]


def test_signup_is_rate_limited(tmp_path: Path) -> None:
    with sup.client(tmp_path, self_serve_signup=True, signups_per_minute=3) as c:
        codes = [c.post("/v1/signup", json={"name": f"u{i}"}).status_code for i in range(5)]
        assert codes == [200, 200, 200, 429, 429]
        tenants = c.get("/v1/admin/tenants", headers=sup.admin_headers()).json()["tenants"]
        assert len(tenants) == 3


def test_token_bucket_refills() -> None:
    from hivemind_rooms.api._ratelimit import TokenBucket

    now = [0.0]
    bucket = TokenBucket(2, clock=lambda: now[0])
    assert [bucket.take(), bucket.take(), bucket.take()] == [True, True, False]
    now[0] = 30.0  # half a minute: one token back
    assert [bucket.take(), bucket.take()] == [True, False]
