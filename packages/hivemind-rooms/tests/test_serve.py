from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import httpx
import pytest
import trio
from hivemind_rooms._serve import serve_rooms
from hivemind_rooms.attestation import (
    AttestationRefused,
    VerificationPolicy,
    load_or_create_dev_provider,
    verify_service_attestation,
)
from hivemind_rooms.links import RoomLink
from hivemind_rooms.manifest import OwnerKey
from hivemind_rooms.settings import Settings, SettingsError
from hivemind_rooms.vault import FAST_KDF

_spec = importlib.util.spec_from_file_location(
    "api_support", Path(__file__).with_name("api_support.py")
)
sup = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sup)


def _dev_root(data_dir: Path) -> str:
    """The dev platform root key the server persisted (what a user would pin)."""
    return load_or_create_dev_provider(data_dir, "{}").root_public_key_b64()


async def test_real_server_end_to_end(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, admin_key=sup.ADMIN, host="127.0.0.1", port=0)
    owner = OwnerKey.generate()
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(functools.partial(serve_rooms, settings, kdf=FAST_KDF))
            base = urls[0]
            assert base.startswith("http://127.0.0.1:")
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                r = await client.get("/v1/healthz")
                assert r.json()["status"] == "ok"
                nonce = bytes(range(16))
                r = await client.get(f"/v1/attestation?nonce={nonce.hex()}")
                bundle = r.json()
                assert bundle["ready"] is True
                root = await trio.to_thread.run_sync(_dev_root, tmp_path)
                verified = verify_service_attestation(
                    bundle["attestation"],
                    service_url=base,
                    nonce=nonce,
                    policy=VerificationPolicy(dev_roots=frozenset({root})),
                )
                assert verified.label == "unattested"
                with pytest.raises(AttestationRefused):
                    verify_service_attestation(
                        bundle["attestation"],
                        service_url=base,
                        nonce=bytes(16),
                        policy=VerificationPolicy(dev_roots=frozenset({root})),
                    )
                r = await client.get("/v1/attestation?nonce=zz")
                assert r.status_code == 400
                r = await client.post(
                    "/v1/admin/tenants", json={"name": "e2e"}, headers=sup.admin_headers()
                )
                tenant = r.json()
                key = sup.auth(tenant["api_key"])
                files = {"archive": ("a.tar.gz", sup.archives.good_agent(), "application/gzip")}
                r = await client.post(
                    "/v1/room-agents",
                    headers=key,
                    files=files,
                    data={"name": "scope", "agent_type": "scope"},
                )
                assert r.status_code == 200, r.text
                envelope = sup.signed_room(tenant["tenant_id"], owner, r.json()["agent_id"])
                r = await client.post("/v1/rooms", json={"envelope": envelope}, headers=key)
                assert r.status_code == 200, r.text
                link = RoomLink.parse(r.json()["link"])
                assert link.service_url == base
                rid = link.room_id
                r = await client.post(f"/v1/rooms/{rid}/data", json={"text": "hello"}, headers=key)
                assert r.status_code == 200
                invite = sup.auth(link.token)
                r = await client.get(f"/v1/rooms/{rid}", headers=invite)
                assert r.json()["manifest_hash"] == envelope["manifest_hash"]
                r = await client.post(
                    "/v1/rooms", content=b"{", headers={**key, "Content-Type": "application/json"}
                )
                assert r.status_code == 400
            nursery.cancel_scope.cancel()
    # a new server process on the same data starts sealed
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(functools.partial(serve_rooms, settings, kdf=FAST_KDF))
            async with httpx.AsyncClient(base_url=urls[0], timeout=10) as client:
                r = await client.get(f"/v1/rooms/{rid}/data", headers=key)
                assert r.status_code == 503
                r = await client.post(f"/v1/rooms/{rid}/open", headers=invite)
                assert r.status_code == 200
                r = await client.get(f"/v1/rooms/{rid}/data", headers=key)
                assert [i["text"] for i in r.json()["items"]] == ["hello"]
            nursery.cancel_scope.cancel()


async def test_graceful_shutdown_trigger(tmp_path: Path) -> None:
    stop = trio.Event()
    settings = Settings(data_dir=tmp_path, host="127.0.0.1", port=0)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(
                functools.partial(serve_rooms, settings, shutdown_trigger=stop.wait, kdf=FAST_KDF)
            )
            async with httpx.AsyncClient(base_url=urls[0], timeout=10) as client:
                assert (await client.get("/v1/healthz")).status_code == 200
            stop.set()
    # the nursery exited on its own: the server stopped


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
async def test_non_loopback_bind_needs_admin_key(tmp_path: Path, host: str) -> None:
    settings = Settings(data_dir=tmp_path, host=host, port=0)
    with pytest.raises(SettingsError, match="HIVEMIND_ADMIN_KEY"):
        await serve_rooms(settings)
    assert not (tmp_path / "control.sqlite3").exists()


async def test_concurrent_creation_of_one_room_id(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, admin_key=sup.ADMIN, host="127.0.0.1", port=0)
    owner = OwnerKey.generate()
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(functools.partial(serve_rooms, settings, kdf=FAST_KDF))
            async with httpx.AsyncClient(base_url=urls[0], timeout=20) as client:
                r = await client.post(
                    "/v1/admin/tenants", json={"name": "race"}, headers=sup.admin_headers()
                )
                tenant = r.json()
                key = sup.auth(tenant["api_key"])
                files = {"archive": ("a.tar.gz", sup.archives.good_agent(), "application/gzip")}
                r = await client.post(
                    "/v1/room-agents",
                    headers=key,
                    files=files,
                    data={"name": "scope", "agent_type": "scope"},
                )
                envelope = sup.signed_room(tenant["tenant_id"], owner, r.json()["agent_id"])
                statuses: list[int] = []

                async def create() -> None:
                    resp = await client.post("/v1/rooms", json={"envelope": envelope}, headers=key)
                    statuses.append(resp.status_code)

                async with trio.open_nursery() as racers:
                    for _ in range(4):
                        racers.start_soon(create)
                assert sorted(statuses) == [200, 409, 409, 409]
                tokens = (await client.get("/v1/tenant/tokens", headers=key)).json()["tokens"]
                assert sum(t["revoked_at"] is None for t in tokens) == 1
            nursery.cancel_scope.cancel()


def test_the_app_never_imports_the_server() -> None:
    import subprocess
    import sys

    code = "import sys, hivemind_rooms.app, hivemind_rooms.api; print('hypercorn' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "False"
