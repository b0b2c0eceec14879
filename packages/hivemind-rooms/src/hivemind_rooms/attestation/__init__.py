"""Attestation: providers (dstack, dev), REPORT_DATA, run signing, client verification.

The service side uses an :class:`AttestationProvider` (``DstackProvider`` in a
TDX CVM, ``DevProvider`` elsewhere), derives its :class:`RunSigner` from it,
serves :func:`build_attestation_document`, and signs every run with
:func:`sign_run_attestation`. The client side calls
:func:`verify_service_attestation` and :func:`verify_run_attestation`.
"""

from __future__ import annotations

from hivemind_rooms.attestation._types import (
    ATTESTED,
    UNATTESTED,
    AttestationError,
    AttestationProvider,
    AttestationRefused,
    AttestationUnavailable,
    PlatformInfo,
    Quote,
    QuoteClaims,
)
from hivemind_rooms.attestation.dcap import CollateralSource, verify_tdx_quote
from hivemind_rooms.attestation.dev import DevProvider, build_dev_app_compose, verify_dev_quote
from hivemind_rooms.attestation.document import (
    build_attestation_document,
    parse_attestation_document,
)
from hivemind_rooms.attestation.dstack import DstackProvider
from hivemind_rooms.attestation.report_data import (
    build_report_data,
    report_data_matches,
    tls_spki_sha256,
)
from hivemind_rooms.attestation.run import (
    AgentPin,
    RunAttestationError,
    RunExpectation,
    build_run_body,
    sign_run_attestation,
    tape_hash,
    text_hash,
    verify_run_attestation,
)
from hivemind_rooms.attestation.run_signer import RunSigner
from hivemind_rooms.attestation.service import (
    AttestationBusy,
    AttestationService,
    load_or_create_dev_provider,
)
from hivemind_rooms.attestation.verify import (
    ServiceAttestation,
    VerificationPolicy,
    check_tdx_claims,
    is_loopback_url,
    verify_service_attestation,
)

__all__ = [
    "ATTESTED",
    "UNATTESTED",
    "AgentPin",
    "AttestationBusy",
    "AttestationError",
    "AttestationProvider",
    "AttestationRefused",
    "AttestationService",
    "AttestationUnavailable",
    "CollateralSource",
    "DevProvider",
    "DstackProvider",
    "PlatformInfo",
    "Quote",
    "QuoteClaims",
    "RunAttestationError",
    "RunExpectation",
    "RunSigner",
    "ServiceAttestation",
    "VerificationPolicy",
    "build_attestation_document",
    "build_dev_app_compose",
    "build_report_data",
    "build_run_body",
    "check_tdx_claims",
    "is_loopback_url",
    "load_or_create_dev_provider",
    "parse_attestation_document",
    "report_data_matches",
    "sign_run_attestation",
    "tape_hash",
    "text_hash",
    "tls_spki_sha256",
    "verify_dev_quote",
    "verify_run_attestation",
    "verify_service_attestation",
    "verify_tdx_quote",
]
