from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import socket

import pytest
from hivemind_rooms.attestation import (
    ATTESTED,
    UNATTESTED,
    AttestationRefused,
    AttestationUnavailable,
    DevProvider,
    QuoteClaims,
    RunSigner,
    VerificationPolicy,
    build_attestation_document,
    build_dev_app_compose,
    check_tdx_claims,
    is_loopback_url,
    verify_service_attestation,
    verify_tdx_quote,
)
from hivemind_rooms.attestation.dcap import pccs_collateral_source
from hivemind_rooms.attestation.eventlog import make_event
from hypothesis import given, settings
from hypothesis import strategies as st

NOW = 1_700_000_000
NONCE = bytes(range(16))
TLS = hashlib.sha256(b"spki").digest()
COMPOSE = build_dev_app_compose({"port": 8100}, version="0.1.0")


def make_provider(clock=lambda: NOW):
    return DevProvider(
        platform_seed=bytes([1]) * 32,
        app_secret=bytes([2]) * 32,
        app_compose=COMPOSE,
        instance_id="ab" * 20,
        clock=clock,
    )


PROVIDER = make_provider()
SIGNER = RunSigner.from_provider(PROVIDER, compose_hash=PROVIDER.info().compose_hash)
POLICY = VerificationPolicy(
    dev_roots=frozenset({PROVIDER.root_public_key_b64()}), clock=lambda: NOW
)


def doc(**kw):
    args = {"app_version": "0.1.0", "run_signer": SIGNER, "nonce": NONCE}
    args.update(kw)
    return build_attestation_document(PROVIDER, **args)


def verify(d, url="http://127.0.0.1:8100", nonce=NONCE, policy=POLICY, tls=None):
    return verify_service_attestation(
        d, service_url=url, nonce=nonce, policy=policy, observed_tls_spki_sha256=tls
    )


def test_dev_attestation_on_loopback_is_accepted_and_labelled_unattested():
    result = verify(doc())
    assert result.label == UNATTESTED
    assert result.platform == "dev"
    assert result.compose_hash == hashlib.sha256(COMPOSE.encode()).hexdigest()
    assert result.run_signer_pubkey_b64 == SIGNER.public_key_b64()
    assert result.app_version == "0.1.0"
    assert result.tls_spki_sha256 is None
    assert doc()["label"] == UNATTESTED
    assert ATTESTED != UNATTESTED


@pytest.mark.parametrize(
    "url", ["http://localhost:1", "http://[::1]:8100", "http://127.9.9.9", "https://a.localhost"]
)
def test_loopback_urls(url):
    assert is_loopback_url(url)
    assert verify(doc(), url=url).label == UNATTESTED


@pytest.mark.parametrize(
    "url", ["https://rooms.example", "http://10.0.0.1:8100", "http://localhost.evil.example"]
)
def test_dev_attestation_refused_for_non_loopback(url):
    """Spec 12.2 check 20."""
    assert not is_loopback_url(url)
    with pytest.raises(AttestationRefused, match="non-loopback"):
        verify(doc(), url=url)
    allowed = dataclasses.replace(POLICY, allow_dev=True)
    assert verify(doc(), url=url, policy=allowed).label == UNATTESTED


def test_dev_attestation_needs_an_explicit_root():
    with pytest.raises(AttestationRefused, match="dev root"):
        verify(doc(), policy=dataclasses.replace(POLICY, dev_roots=frozenset()))
    stranger = DevProvider.generate(COMPOSE, clock=lambda: NOW)
    other = build_attestation_document(
        stranger, app_version="0.1.0", run_signer=SIGNER, nonce=NONCE
    )
    with pytest.raises(AttestationRefused, match="untrusted"):
        verify(other)


def test_nonce_binding():
    with pytest.raises(AttestationRefused, match="nonce"):
        verify(doc(), nonce=bytes(16))
    with pytest.raises(AttestationRefused, match="nonce"):
        verify(doc(nonce=None), nonce=NONCE)
    # A document whose nonce field was rewritten no longer matches REPORT_DATA.
    forged = doc(nonce=None)
    forged["nonce_hex"] = NONCE.hex()
    with pytest.raises(AttestationRefused, match="REPORT_DATA"):
        verify(forged)
    assert verify(doc(nonce=None), nonce=None).label == UNATTESTED


def test_stale_dev_quote_refused():
    old = build_attestation_document(
        make_provider(clock=lambda: NOW - 3600), app_version="0.1.0", run_signer=SIGNER, nonce=NONCE
    )
    with pytest.raises(AttestationRefused, match="fresh"):
        verify(old)


def test_swapped_run_signer_or_version_refused():
    d = doc()
    d["run_signer_pubkey_b64"] = RunSigner(bytes([9]) * 32).public_key_b64()
    with pytest.raises(AttestationRefused, match="REPORT_DATA"):
        verify(d)
    d = doc()
    d["app_version"] = "0.2.0"
    with pytest.raises(AttestationRefused, match="REPORT_DATA"):
        verify(d)


def test_compose_claims_must_match_the_quote():
    d = doc()
    d["compose_hash"] = "00" * 32
    with pytest.raises(AttestationRefused, match="compose"):
        verify(d)
    d = doc()
    d["app_compose"] = COMPOSE.replace("8100", "8101")
    with pytest.raises(AttestationRefused, match="compose"):
        verify(d)
    d = doc()
    d["app_id"] = "ff" * 20
    with pytest.raises(AttestationRefused, match="app id"):
        verify(d)


def test_event_log_must_replay():
    d = doc()
    events = json.loads(d["event_log"])
    events[1] = make_event("compose-hash", b"\x00" * 32)
    d["event_log"] = json.dumps(events)
    with pytest.raises(AttestationRefused, match="RTMR3"):
        verify(d)


def test_allowed_composes():
    good = frozenset({PROVIDER.info().compose_hash})
    assert verify(doc(), policy=dataclasses.replace(POLICY, allowed_composes=good))
    with pytest.raises(AttestationRefused, match="allowed"):
        verify(doc(), policy=dataclasses.replace(POLICY, allowed_composes=frozenset({"0" * 64})))


def test_tls_binding():
    bound = doc(tls_spki_sha256=TLS)
    assert verify(bound, tls=TLS).tls_spki_sha256 == TLS
    with pytest.raises(AttestationRefused, match="TLS"):
        verify(bound, tls=hashlib.sha256(b"mitm").digest())
    with pytest.raises(AttestationRefused, match="TLS"):
        verify(doc(), tls=TLS)
    strict = dataclasses.replace(POLICY, require_tls_binding=True)
    with pytest.raises(AttestationRefused, match="TLS"):
        verify(doc(), policy=strict)
    assert verify(bound, policy=strict, tls=TLS).tls_spki_sha256 == TLS
    stripped = copy.deepcopy(bound)
    stripped["tls_spki_sha256_hex"] = ""
    with pytest.raises(AttestationRefused):
        verify(stripped)


@pytest.mark.parametrize(
    "mutation",
    [
        lambda d: d.pop("label"),
        lambda d: d.update(extra="x"),
        lambda d: d.update(schema="v0"),
        lambda d: d.update(platform="sgx"),
        lambda d: d.update(quote_hex="zz"),
        lambda d: d.update(run_signer_pubkey_b64="abc"),
        lambda d: d.update(compose_hash="ab"),
        lambda d: d.update(app_version=1),
    ],
)
def test_malformed_documents(mutation):
    d = doc()
    mutation(d)
    with pytest.raises(AttestationRefused):
        verify(d)
    with pytest.raises(AttestationRefused):
        verify("not a dict")


def test_tdx_without_collateral_fails_closed():
    d = doc()
    d["platform"] = "dstack"
    with pytest.raises(AttestationUnavailable, match="collateral"):
        verify(d)
    with pytest.raises(AttestationUnavailable):
        verify_tdx_quote(b"\x04\x00", collateral=None, now=NOW)


def test_tdx_quote_that_is_not_a_quote_is_refused():
    d = doc()  # a dev quote presented as a TDX quote
    d["platform"] = "dstack"
    policy = dataclasses.replace(POLICY, collateral=lambda q: "{}")
    with pytest.raises(AttestationRefused, match="TDX quote malformed"):
        verify(d, policy=policy)
    with pytest.raises(AttestationRefused):
        verify_tdx_quote(b"", collateral=lambda q: "{}", now=NOW)


def test_pccs_source_unreachable_is_unavailable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    source = pccs_collateral_source(f"http://127.0.0.1:{port}", timeout=60)
    with pytest.raises(AttestationUnavailable):
        source(b"\x04\x00" + bytes(100))


def tdx_claims(**kw):
    args = {
        "platform": "dstack",
        "tcb_status": "UpToDate",
        "mrtd": "aa" * 48,
        "rtmr": ("00" * 48, "01" * 48, "02" * 48, "03" * 48),
        "mr_config_id": "01" + "cd" * 32 + "00" * 15,
        "report_data": bytes(64),
        "debug": False,
    }
    args.update(kw)
    return QuoteClaims(**args)


TDX_POLICY = VerificationPolicy(
    allowed_mrtd=frozenset({"AA" * 48}),
    allowed_rtmr0=frozenset({"00" * 48}),
    allowed_rtmr1=frozenset({"01" * 48}),
    allowed_rtmr2=frozenset({"02" * 48}),
)


def test_tdx_measurement_policy():
    """Spec 12.2 checks 12 and 19 (policy part): OS image, debug bit, TCB status."""
    check_tdx_claims(tdx_claims(), TDX_POLICY)
    assert tdx_claims().compose_hash == "cd" * 32
    assert tdx_claims(mr_config_id="00" * 48).compose_hash == ""
    for bad, match in [
        (tdx_claims(debug=True), "debug"),
        (tdx_claims(mrtd="bb" * 48), "MRTD"),
        (tdx_claims(rtmr=("ff" * 48, "01" * 48, "02" * 48, "03" * 48)), "RTMR0"),
        (tdx_claims(rtmr=("00" * 48, "ff" * 48, "02" * 48, "03" * 48)), "RTMR1"),
        (tdx_claims(rtmr=("00" * 48, "01" * 48, "ff" * 48, "03" * 48)), "RTMR2"),
        (tdx_claims(tcb_status="OutOfDate"), "TCB"),
        (tdx_claims(tcb_status="Revoked"), "TCB"),
    ]:
        with pytest.raises(AttestationRefused, match=match):
            check_tdx_claims(bad, TDX_POLICY)
    with pytest.raises(AttestationRefused, match="MRTD"):
        check_tdx_claims(tdx_claims(), VerificationPolicy())


json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=12)


@settings(max_examples=200)
@given(
    st.sampled_from(sorted(doc())),
    st.one_of(json_scalars, st.lists(json_scalars, max_size=3)),
)
def test_fuzzed_documents_only_raise_attestation_errors(key, value):
    d = doc()
    d[key] = value
    with contextlib.suppress(AttestationRefused, AttestationUnavailable):
        verify(d)


@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["imr", "event_type", "digest", "event", "event_payload"]), json_scalars
        ),
        max_size=4,
    )
)
def test_fuzzed_event_logs_only_raise_refused(events):
    d = doc()
    d["event_log"] = json.dumps(events)
    with pytest.raises(AttestationRefused):
        verify(d)
