"""A room run end to end: the real server (hypercorn on port 0), the docker runner, real agents.

The owner publishes a room over a table with personal data, a participant
with an invite and their own payer key asks through the room's default
query agent, the default mediator redacts per the policy, and the client
verifies the service attestation (against the persisted dev root) and the
signed run attestation, including the hash of the exact question it sent.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import io
import tarfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from hivemind_rooms._serve import serve_rooms
from hivemind_rooms.attestation import (
    AgentPin,
    RunAttestationError,
    RunExpectation,
    VerificationPolicy,
    verify_run_attestation,
    verify_service_attestation,
)
from hivemind_rooms.attestation.service import load_or_create_dev_provider
from hivemind_rooms.credentials import new_room_id
from hivemind_rooms.manifest import OwnerKey, build_manifest, sign_manifest
from hivemind_rooms.settings import Settings
from hivemind_rooms.vault import FAST_KDF

ROOT = Path(__file__).resolve().parents[1]
ADMIN = "admin-key-for-e2e-0123456789"
_spec = importlib.util.spec_from_file_location("agents_pack", ROOT / "agents" / "pack.py")
pack = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pack)


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _upload(client: httpx.AsyncClient, key: str, agent: str, kind: str) -> dict[str, Any]:
    archive = pack.pack_agent(ROOT / "agents" / agent)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        assert "hivemind_agent.py" in tar.getnames()  # the SDK is vendored by the pack step
    r = await client.post(
        "/v1/room-agents",
        data={"name": agent, "agent_type": kind},
        files={"archive": ("a.tar.gz", archive, "application/gzip")},
        headers=_auth(key),
    )
    assert r.status_code == 200, r.text
    agent_id = r.json()["agent_id"]
    r = await client.get(f"/v1/room-agents/{agent_id}/attest", headers=_auth(key))
    assert r.status_code == 200, r.text
    return {"agent_id": agent_id, "digest": r.json()["files_digest_sha256"]}


async def _sql(client: httpx.AsyncClient, key: str, sql: str, params: list[Any]) -> None:
    r = await client.post("/v1/tenant/sql", json={"sql": sql, "params": params}, headers=_auth(key))
    assert r.status_code == 200, r.text


async def _wait(client: httpx.AsyncClient, headers: dict[str, str], run_id: str) -> dict:
    for _ in range(1200):
        r = await client.get(f"/v1/runs/{run_id}", headers=headers)
        assert r.status_code == 200, r.text
        if r.json()["status"] in ("completed", "failed"):
            return r.json()
        await trio.sleep(0.1)
    raise AssertionError("the run did not finish")


@pytest.mark.slow
async def test_room_run_on_the_real_server_with_docker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HIVEMIND_RUNNER", "docker")
    monkeypatch.delenv("HIVEMIND_ALLOW_LOCAL_RUNNER", raising=False)
    settings = Settings(data_dir=tmp_path, admin_key=ADMIN, host="127.0.0.1", port=0)
    owner = OwnerKey.generate()
    with trio.fail_after(280):
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(functools.partial(serve_rooms, settings, kdf=FAST_KDF))
            async with httpx.AsyncClient(base_url=urls[0], timeout=30) as client:
                await _scenario(client, urls[0], tmp_path, owner)
            nursery.cancel_scope.cancel()


async def _scenario(client: httpx.AsyncClient, base: str, data_dir: Path, owner: OwnerKey) -> None:
    r = await client.post("/v1/admin/tenants", json={"name": "owner"}, headers=_auth(ADMIN))
    tenant = r.json()
    r = await client.post("/v1/admin/tenants", json={"name": "payer"}, headers=_auth(ADMIN))
    payer = r.json()
    key = tenant["api_key"]
    await _sql(client, key, "CREATE TABLE people (name TEXT, email TEXT, city TEXT)", [])
    for row in (["Ann", "ann@example.org", "Lisbon"], ["Bob", "bob@example.org", "Porto"]):
        await _sql(client, key, "INSERT INTO people VALUES (?, ?, ?)", row)
    await _sql(client, key, "CREATE TABLE payroll (salary INTEGER)", [])
    await _sql(client, key, "INSERT INTO payroll VALUES (?)", [987654])
    agents = {
        "scope": await _upload(client, key, "default-scope", "scope"),
        "query": await _upload(client, key, "default-query", "query"),
        "mediator": await _upload(client, key, "default-mediator", "mediator"),
    }
    manifest = build_manifest(
        room_id=new_room_id(),
        tenant_id=tenant["tenant_id"],
        owner_pubkey_b64=owner.public_key_b64(),
        scope_agent_id=agents["scope"]["agent_id"],
        query_agent_id=agents["query"]["agent_id"],
        mediator_agent_id=agents["mediator"]["agent_id"],
        query_mode="fixed",
        scope_visibility="inspectable",
        query_visibility="inspectable",
        policy="hide: email\nredact: Porto",
        llm_providers=(),
        allowed_tables=["people"],
        created_at=int(time.time()),
    )
    envelope = sign_manifest(manifest, owner)
    r = await client.post("/v1/rooms", json={"envelope": envelope}, headers=_auth(key))
    assert r.status_code == 200, r.text
    room = r.json()
    invite = _auth(room["token"])
    nonce = bytes(range(16))
    bundle = (await client.get(f"/v1/attestation?nonce={nonce.hex()}")).json()
    root = await trio.to_thread.run_sync(
        lambda: load_or_create_dev_provider(data_dir, "{}").root_public_key_b64()
    )
    service = verify_service_attestation(
        bundle["attestation"],
        service_url=base,
        nonce=nonce,
        policy=VerificationPolicy(dev_roots=frozenset({root})),
    )
    question = "Who lives where? SQL: SELECT * FROM people"
    r = await client.post(
        f"/v1/rooms/{room['room_id']}/runs",
        json={"query": question},
        headers={**invite, "X-Hivemind-Api-Key": payer["api_key"]},
    )
    assert r.status_code == 200, r.text
    run = await _wait(client, invite, r.json()["run_id"])
    assert run["status"] == "completed", run["error"]
    output = run["output"]
    assert "Lisbon" in output
    assert "example.org" not in output
    assert "Porto" not in output
    assert "987654" not in output
    assert {s["runner"] for s in run["usage"]["stages"].values()} == {"docker"}
    expect = RunExpectation(
        signer_pubkey_b64=service.run_signer_pubkey_b64,
        room_id=room["room_id"],
        manifest_hash=envelope["manifest_hash"],
        compose_hash=service.compose_hash,
        platform=service.platform,
        agents={r: AgentPin(a["agent_id"], a["digest"]) for r, a in agents.items()},
        models={},
        prompt=question,
        output=output,
        now=int(time.time()),
        run_id=run["run_id"],
    )
    verify_run_attestation(run["attestation"], expected=expect)
    with pytest.raises(RunAttestationError) as info:
        verify_run_attestation(
            run["attestation"], expected=dataclasses.replace(expect, prompt=question + " ")
        )
    assert info.value.field == "prompt_hash"
    r = await client.get(f"/v1/runs/{run['run_id']}", headers=_auth(key))
    assert r.json()["payload_redacted"] is True  # querier_only: the owner sees no payload
    assert r.json()["usage"] is None
