from __future__ import annotations

import datetime
import hashlib
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from dstack_sdk.dstack_client import replay_rtmr
from hivemind_rooms.attestation import AttestationRefused
from hivemind_rooms.attestation.eventlog import (
    event_digest,
    make_event,
    replay_rtmr3,
    verified_event_payloads,
)
from hivemind_rooms.attestation.report_data import (
    build_report_data,
    report_data_matches,
    tls_spki_sha256,
)
from hypothesis import given
from hypothesis import strategies as st

SIGNER = bytes(range(32))
TLS = hashlib.sha256(b"tls").digest()
NONCE = bytes(16)


def test_layout():
    rd = build_report_data(app_version="1.0", run_signer_public_key=SIGNER)
    assert len(rd) == 64
    assert rd[32] == 3
    assert rd[33] == 0
    assert rd[34:] == bytes(30)
    full = build_report_data(
        app_version="1.0", run_signer_public_key=SIGNER, tls_key_sha256=TLS, nonce=NONCE
    )
    assert full[33] == 3
    assert build_report_data(app_version="1.0", run_signer_public_key=SIGNER, nonce=NONCE)[33] == 2


@given(
    version=st.text(max_size=10),
    signer=st.binary(min_size=32, max_size=32),
    tls=st.none() | st.binary(min_size=32, max_size=32),
    nonce=st.none() | st.binary(min_size=16, max_size=32),
)
def test_binds_every_input(version, signer, tls, nonce):
    args = {
        "app_version": version,
        "run_signer_public_key": signer,
        "tls_key_sha256": tls,
        "nonce": nonce,
    }
    rd = build_report_data(**args)
    assert report_data_matches(rd, **args)
    changed = [
        {**args, "app_version": version + "x"},
        {**args, "run_signer_public_key": bytes(31) + bytes([signer[-1] ^ 1])},
        {**args, "tls_key_sha256": None if tls else TLS},
        {**args, "nonce": None if nonce else NONCE},
    ]
    for other in changed:
        if other == args:
            continue
        assert not report_data_matches(rd, **other)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"run_signer_public_key": bytes(31)},
        {"run_signer_public_key": SIGNER, "tls_key_sha256": bytes(31)},
        {"run_signer_public_key": SIGNER, "nonce": bytes(15)},
        {"run_signer_public_key": SIGNER, "nonce": bytes(33)},
    ],
)
def test_bad_lengths(kwargs):
    with pytest.raises(ValueError):
        build_report_data(app_version="1", **kwargs)
    assert not report_data_matches(bytes(64), app_version="1", **kwargs)


def self_signed():
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rooms-test")])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, cert


def test_tls_spki_hash_pem_and_der_agree():
    key, cert = self_signed()
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    expected = hashlib.sha256(spki).digest()
    assert tls_spki_sha256(cert.public_bytes(serialization.Encoding.PEM)) == expected
    assert tls_spki_sha256(cert.public_bytes(serialization.Encoding.DER)) == expected
    assert tls_spki_sha256(self_signed()[1].public_bytes(serialization.Encoding.DER)) != expected


def test_replay_agrees_with_the_dstack_sdk():
    events = [make_event(name, bytes([i]) * 20) for i, name in enumerate(["a", "b", "c"])]
    assert replay_rtmr3(events).hex() == replay_rtmr([e["digest"] for e in events])
    assert replay_rtmr3([]) == bytes(48)


def test_event_digest_formula():
    data = (0x08000001).to_bytes(4, "little") + b":compose-hash:" + b"\x01\x02"
    assert event_digest(0x08000001, "compose-hash", b"\x01\x02") == hashlib.sha384(data).digest()


def log_and_rtmr():
    events = [make_event("app-id", b"\xaa" * 20), make_event("compose-hash", b"\xbb" * 32)]
    events.insert(
        0, {"imr": 0, "event_type": 1, "digest": "00" * 48, "event": "", "event_payload": ""}
    )
    return events, replay_rtmr3(events).hex()


def test_verified_payloads():
    events, rtmr3 = log_and_rtmr()
    payloads = verified_event_payloads(json.dumps(events), rtmr3)
    assert payloads == {"app-id": b"\xaa" * 20, "compose-hash": b"\xbb" * 32}


def test_tampered_payload_or_log_is_refused():
    events, rtmr3 = log_and_rtmr()
    events[2]["event_payload"] = "cc" * 32
    with pytest.raises(AttestationRefused):
        verified_event_payloads(json.dumps(events), rtmr3)
    # a consistent forged event (digest recomputed) no longer replays to the quoted RTMR3
    events[2] = make_event("compose-hash", b"\xcc" * 32)
    with pytest.raises(AttestationRefused):
        verified_event_payloads(json.dumps(events), rtmr3)
    with pytest.raises(AttestationRefused):
        verified_event_payloads("not json", rtmr3)
    with pytest.raises(AttestationRefused):
        verified_event_payloads(json.dumps([{"imr": 3, "digest": "zz"}]), rtmr3)
