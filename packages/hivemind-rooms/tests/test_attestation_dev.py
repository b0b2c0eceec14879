from __future__ import annotations

import hashlib
import json

import pytest
from hivemind_rooms.attestation import (
    AttestationProvider,
    AttestationRefused,
    DevProvider,
    build_dev_app_compose,
    verify_dev_quote,
)
from hivemind_rooms.attestation.eventlog import replay_rtmr3
from hivemind_rooms.canonical import b64_encode, canonical_json

COMPOSE = build_dev_app_compose({"port": 8100, "runner": "local"}, version="0.1.0")


def provider(seed=1, clock=lambda: 1_700_000_000):
    return DevProvider(
        platform_seed=bytes([seed]) * 32,
        app_secret=bytes([seed + 1]) * 32,
        app_compose=COMPOSE,
        instance_id="ab" * 20,
        clock=clock,
    )


def test_is_a_provider_and_reports_real_compose_hash():
    p = provider()
    assert isinstance(p, AttestationProvider)
    assert p.kind == "dev"
    info = p.info()
    assert info.compose_hash == hashlib.sha256(COMPOSE.encode()).hexdigest()
    assert info.measurements["mr_config_id"] == "01" + info.compose_hash + "00" * 15
    assert json.loads(info.app_compose)["config"] == {"port": 8100, "runner": "local"}


def test_compose_changes_with_config_version_and_source():
    # computed here, not at import: the source digest must see the same files
    compose = build_dev_app_compose({"port": 8100, "runner": "local"}, version="0.1.0")
    other = build_dev_app_compose({"port": 8101, "runner": "local"}, version="0.1.0")
    assert other != compose
    assert build_dev_app_compose({"port": 8100, "runner": "local"}, version="0.2.0") != compose
    assert (
        json.loads(compose)["source_sha256"]
        != json.loads(build_dev_app_compose({}, version="0.1.0", packages=("hivemind_proto",)))[
            "source_sha256"
        ]
    )
    assert build_dev_app_compose({"port": 8100, "runner": "local"}, version="0.1.0") == compose


def test_quote_round_trip_and_claims():
    p = provider()
    rd = bytes(range(64))
    q = p.quote(rd)
    claims = verify_dev_quote(q.quote, {p.root_public_key_b64()})
    assert claims.platform == "dev"
    assert claims.tcb_status == "Dev"
    assert claims.report_data == rd
    assert claims.compose_hash == p.info().compose_hash
    assert claims.issued_at == 1_700_000_000
    assert claims.rtmr[3] == replay_rtmr3(json.loads(q.event_log)).hex()
    assert claims.debug is False


def test_untrusted_root_refused():
    p = provider()
    q = p.quote(bytes(64))
    with pytest.raises(AttestationRefused):
        verify_dev_quote(q.quote, {provider(seed=7).root_public_key_b64()})
    with pytest.raises(AttestationRefused):
        verify_dev_quote(q.quote, set())


@pytest.mark.parametrize(
    "field", ["report_data", "mr_config_id", "mrtd", "rtmr", "app_id", "compose_hash", "issued_at"]
)
def test_every_quote_field_is_signed(field):
    p = provider()
    signed = json.loads(p.quote(bytes(64)).quote)
    value = signed["body"][field]
    if isinstance(value, int):
        signed["body"][field] = value + 1
    elif isinstance(value, list):
        signed["body"][field] = [*value[:-1], "00" * 48]
    else:
        signed["body"][field] = ("0" if value[0] != "0" else "1") + value[1:]
    with pytest.raises(AttestationRefused):
        verify_dev_quote(canonical_json(signed), {p.root_public_key_b64()})


def test_non_canonical_or_malformed_quotes_refused():
    p = provider()
    q = p.quote(bytes(64)).quote
    roots = {p.root_public_key_b64()}
    spaced = json.dumps(json.loads(q), indent=1).encode()
    for bad in [spaced, b"{}", b"not json", q[:-1], b"x" * 70000]:
        with pytest.raises(AttestationRefused):
            verify_dev_quote(bad, roots)
    signed = json.loads(q)
    signed["signature_b64"] = b64_encode(bytes(64))
    with pytest.raises(AttestationRefused):
        verify_dev_quote(canonical_json(signed), roots)


def test_derive_key_is_deterministic_per_path_and_app():
    p = provider()
    k = p.derive_key("hivemind-rooms/run-signer/v1")
    assert len(k) == 32
    assert k == provider().derive_key("hivemind-rooms/run-signer/v1")
    assert k != p.derive_key("other")
    assert k != provider(seed=3).derive_key("hivemind-rooms/run-signer/v1")


def test_report_data_length_and_repr():
    p = provider()
    with pytest.raises(ValueError):
        p.quote(bytes(32))
    assert (bytes([2]) * 32).hex() not in repr(p)
    assert p.root_public_key_b64() in repr(p)


def test_generate_uses_rng():
    draws = iter(range(1, 10))
    gen = DevProvider.generate(COMPOSE, rng=lambda n: bytes([next(draws)]) * n)
    assert gen.root_public_key_b64() == provider(seed=1).root_public_key_b64()
