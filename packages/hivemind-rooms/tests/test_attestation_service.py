from __future__ import annotations

import os
import stat

import pytest
from hivemind_rooms.attestation import (
    UNATTESTED,
    AgentPin,
    AttestationBusy,
    AttestationService,
    RunExpectation,
    VerificationPolicy,
    build_run_body,
    sign_run_attestation,
    tape_hash,
    verify_run_attestation,
    verify_service_attestation,
)

CONFIG = {"port": 8100, "runner": "local"}


class Clock:
    def __init__(self, now=1_700_000_000):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture(autouse=True)
def no_simulator(monkeypatch):
    monkeypatch.delenv("DSTACK_SIMULATOR_ENDPOINT", raising=False)


def dev_service(tmp_path, **kw):
    return AttestationService.bootstrap(
        tmp_path, app_version="0.1.0", config=CONFIG, mode="dev", **kw
    )


def policy_for(service, clock):
    root = service.provider.root_public_key_b64()
    return VerificationPolicy(dev_roots=frozenset({root}), clock=lambda: int(clock()))


async def test_dev_bootstrap_persists_keys_privately(tmp_path):
    first = dev_service(tmp_path)
    assert first.ready
    assert first.platform == "dev"
    assert first.label == UNATTESTED
    key_file = tmp_path / "attestation-dev-keys.json"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    second = dev_service(tmp_path)
    assert second.provider.root_public_key_b64() == first.provider.root_public_key_b64()
    assert second.run_signer.public_key() == first.run_signer.public_key()
    assert second.provider.info().instance_id != first.provider.info().instance_id


async def test_dstack_only_without_agent_is_not_ready(tmp_path):
    service = AttestationService.bootstrap(
        tmp_path, app_version="0.1.0", config=CONFIG, mode="dstack",
        dstack_endpoint=str(tmp_path / "absent.sock"),
    )  # fmt: skip
    assert not service.ready
    answer = await service.bundle()
    assert answer["ready"] is False
    assert "dstack" in answer["reason"]
    assert service.run_signer is None


async def test_auto_falls_back_to_dev(tmp_path):
    service = AttestationService.bootstrap(
        tmp_path, app_version="0.1.0", config=CONFIG, mode="auto",
        dstack_endpoint=str(tmp_path / "absent.sock"),
    )  # fmt: skip
    assert service.platform == "dev"


async def test_nonce_bundle_verifies_and_binds_the_run_signer(tmp_path):
    clock = Clock()
    service = dev_service(tmp_path, clock=clock)
    nonce = os.urandom(16)
    answer = await service.bundle(nonce)
    assert answer["ready"] is True
    assert answer["label"] == UNATTESTED
    verified = verify_service_attestation(
        answer["attestation"],
        service_url="http://127.0.0.1:8100",
        nonce=nonce,
        policy=policy_for(service, clock),
    )
    assert verified.compose_hash == service.compose_hash
    body = build_run_body(
        run_id="0123456789ab", status="completed", timestamp=int(clock()), platform="dev",
        room_id="room_0123456789ab", manifest_hash="aa" * 32, compose_hash=service.compose_hash,
        agents={"scope": AgentPin("s", "bb" * 32)}, models={}, prompt="q", output="a",
        tape_hash=tape_hash([]), signer=service.run_signer,
    )  # fmt: skip
    att = sign_run_attestation(body, service.run_signer)
    expectation = RunExpectation(
        signer_pubkey_b64=verified.run_signer_pubkey_b64, room_id="room_0123456789ab",
        manifest_hash="aa" * 32, compose_hash=verified.compose_hash, platform=verified.platform,
        agents={"scope": AgentPin("s", "bb" * 32)}, models={}, prompt="q", output="a",
        now=int(clock()),
    )  # fmt: skip
    assert verify_run_attestation(att, expected=expectation)["run_id"] == "0123456789ab"


async def test_fresh_quotes_are_rate_limited(tmp_path):
    clock = Clock()
    service = dev_service(tmp_path, clock=clock, fresh_quotes_per_minute=2)
    await service.bundle(os.urandom(16))
    await service.bundle(os.urandom(16))
    with pytest.raises(AttestationBusy):
        await service.bundle(os.urandom(16))
    clock.now += 30
    assert (await service.bundle(os.urandom(16)))["ready"] is True
    with pytest.raises(ValueError):
        await service.bundle(b"short")


async def test_plain_bundle_is_cached_then_refreshed(tmp_path):
    clock = Clock()
    service = dev_service(tmp_path, clock=clock)
    a = await service.bundle()
    clock.now += 10
    b = await service.bundle()
    assert a["attestation"] is b["attestation"]
    clock.now += 120
    c = await service.bundle()
    assert c["attestation"]["quote_hex"] != a["attestation"]["quote_hex"]
    verify_service_attestation(
        c["attestation"], service_url="http://localhost:8100", nonce=None,
        policy=policy_for(service, clock),
    )  # fmt: skip
