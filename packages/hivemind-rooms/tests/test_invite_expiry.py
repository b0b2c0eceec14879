"""Invites with an expiry: accepted until ``expires_at``, refused like revoked ones after.

Time is controlled through the clock :class:`Tenants` takes: the app's
tenants are rebuilt over the same storage with a clock the test moves.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from hivemind_rooms.manifest import OwnerKey
from hivemind_rooms.tenants import INVITE_EXPIRY_RANGE, TenantError, Tenants
from starlette.testclient import TestClient

_spec = importlib.util.spec_from_file_location(
    "api_support", Path(__file__).with_name("api_support.py")
)
sup = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sup)

_START = 1_900_000_000.0


def _clocked(c: TestClient) -> list[float]:
    """Give the app's tenants a clock the test sets; return its cell."""
    now = [_START]
    services = c.app.state.services
    services.tenants = Tenants(
        services.storage, services.hasher, services.billing, clock=lambda: now[0]
    )
    return now


def _room(c: TestClient) -> tuple[dict[str, str], dict[str, Any]]:
    tenant = sup.new_tenant(c)
    return sup.auth(tenant["api_key"]), sup.make_room(c, tenant, OwnerKey.generate())


def test_invite_works_until_it_expires_then_is_refused_like_a_revoked_one(
    tmp_path: Path,
) -> None:
    with sup.client(tmp_path) as c:
        now = _clocked(c)
        key, room = _room(c)
        rid = room["room_id"]
        r = c.post(f"/v1/rooms/{rid}/invites", json={"expires_in_seconds": 60}, headers=key)
        assert r.status_code == 200, r.text
        invite = r.json()
        assert invite["expires_at"] == _START + 60
        lasting = c.post(f"/v1/rooms/{rid}/invites", headers=key).json()
        assert lasting["expires_at"] is None
        listed = {
            t["token_id"]: t for t in c.get("/v1/tenant/tokens", headers=key).json()["tokens"]
        }
        assert listed[invite["token_id"]]["expires_at"] == _START + 60
        assert listed[lasting["token_id"]]["expires_at"] is None

        holder = sup.auth(invite["token"])
        now[0] = _START + 59.5
        assert c.get(f"/v1/rooms/{rid}", headers=holder).status_code == 200
        assert c.post(f"/v1/rooms/{rid}/open", headers=holder).status_code == 200

        now[0] = _START + 60
        expired = c.get(f"/v1/rooms/{rid}", headers=holder)
        c.delete(f"/v1/tenant/tokens/{room['token_id']}", headers=key)
        revoked = c.get(f"/v1/rooms/{rid}", headers=sup.auth(room["token"]))
        assert expired.status_code == revoked.status_code == 401
        assert expired.json() == revoked.json()
        assert c.get("/v1/rooms", headers=holder).status_code == 401
        # the invite without expiry and the owner are unaffected
        now[0] = _START + 400 * 86400
        assert c.get(f"/v1/rooms/{rid}", headers=sup.auth(lasting["token"])).status_code == 200
        assert c.get(f"/v1/rooms/{rid}", headers=key).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"expires_in_seconds": 59},
        {"expires_in_seconds": 365 * 86400 + 1},
        {"expires_in_seconds": 0},
        {"expires_in_seconds": -60},
        {"expires_in_seconds": "3600"},
        {"expires_in_seconds": 3600.5},
        {"expires_in_seconds": True},
        {"expires_in": 3600},
        [3600],
    ],
)
def test_bad_lifetimes_are_refused_and_mint_nothing(tmp_path: Path, body: Any) -> None:
    with sup.client(tmp_path) as c:
        key, room = _room(c)
        before = c.get("/v1/tenant/tokens", headers=key).json()["tokens"]
        r = c.post(f"/v1/rooms/{room['room_id']}/invites", json=body, headers=key)
        assert r.status_code == 422, r.text
        assert c.get("/v1/tenant/tokens", headers=key).json()["tokens"] == before


def test_lifetime_bounds_are_inclusive(tmp_path: Path) -> None:
    low, high = INVITE_EXPIRY_RANGE
    with sup.client(tmp_path) as c:
        key, room = _room(c)
        for seconds in (low, high, None):
            r = c.post(
                f"/v1/rooms/{room['room_id']}/invites",
                json={"expires_in_seconds": seconds},
                headers=key,
            )
            assert r.status_code == 200, r.text
            assert (r.json()["expires_at"] is None) == (seconds is None)


def test_tenants_refuse_out_of_range_lifetimes_directly(tmp_path: Path) -> None:
    with sup.client(tmp_path) as c:
        tenants = c.app.state.services.tenants
        tenant = sup.new_tenant(c)
        with pytest.raises(TenantError) as info:
            tenants.mint_invite(
                tenant["tenant_id"], label="x", constraints={"room_id": "r"}, expires_in=59
            )
        assert info.value.status == 422
