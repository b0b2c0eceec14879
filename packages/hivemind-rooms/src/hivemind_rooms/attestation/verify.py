"""Client-side verification of a service attestation document.

Theory of operation: one strict pipeline for both platforms; only the quote
check differs.

1. The document's shape is checked (:func:`parse_attestation_document`).
2. The quote: a ``dev`` quote is refused outright for a service that is not on
   a loopback address unless the policy says ``allow_dev``; otherwise its
   signature must come from a dev root the user trusts explicitly, and it must
   be fresh. A ``dstack`` quote is verified by dcap-qvl against collateral
   (none available: refused), with an accepted TCB status, the debug bit
   clear, and MRTD/RTMR0-2 in the policy's allowlists.
3. The event log must replay to the quoted RTMR3; its ``compose-hash`` event
   is the deployment's compose hash, which must also match MRCONFIGID when
   that is set, the document's claim, and SHA-256 of the served app compose.
4. REPORT_DATA must bind the app version, the run-signer key, the TLS key hash
   (which must equal the one observed on the connection, when observed) and
   the nonce the client sent.
5. The compose hash must be in the policy's allowlist, if one is given.

The result carries the *verified* compose hash and run-signer key (use these,
never the document's unverified fields, for room trust and run
verification) and a label: ``attested`` for TDX, ``unattested`` for dev.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, final
from urllib.parse import urlsplit

from hivemind_rooms.attestation._types import (
    ATTESTED,
    UNATTESTED,
    AttestationRefused,
    QuoteClaims,
)
from hivemind_rooms.attestation.dcap import CollateralSource, verify_tdx_quote
from hivemind_rooms.attestation.dev import verify_dev_quote
from hivemind_rooms.attestation.document import parse_attestation_document
from hivemind_rooms.attestation.eventlog import verified_event_payloads
from hivemind_rooms.attestation.report_data import report_data_matches
from hivemind_rooms.canonical import b64_decode

__all__ = [
    "ServiceAttestation",
    "VerificationPolicy",
    "is_loopback_url",
    "verify_service_attestation",
]


@final
@dataclass(frozen=True)
class VerificationPolicy:
    """What a client accepts.

    Attributes:
        allow_dev: accept dev attestations from non-loopback services.
        dev_roots: base64 Ed25519 dev root keys the user trusts.
        collateral: DCAP collateral source for TDX quotes (None: offline).
        allowed_tcb_statuses: TCB statuses accepted for TDX quotes.
        allowed_mrtd: accepted MRTD values (hex); empty refuses every TDX quote.
        allowed_rtmr0: accepted RTMR0 values (hex); empty refuses every TDX quote.
        allowed_rtmr1: accepted RTMR1 values (hex); as above.
        allowed_rtmr2: accepted RTMR2 values (hex); as above.
        allowed_composes: accepted compose hashes; empty accepts any (room
            trust is then checked separately against the verified hash).
        require_tls_binding: refuse unless the observed TLS key is bound.
        max_dev_quote_age: seconds a dev quote stays fresh.
        clock: returns current Unix seconds.
    """

    allow_dev: bool = False
    dev_roots: frozenset[str] = frozenset()
    collateral: CollateralSource | None = None
    allowed_tcb_statuses: frozenset[str] = frozenset({"UpToDate"})
    allowed_mrtd: frozenset[str] = frozenset()
    allowed_rtmr0: frozenset[str] = frozenset()
    allowed_rtmr1: frozenset[str] = frozenset()
    allowed_rtmr2: frozenset[str] = frozenset()
    allowed_composes: frozenset[str] = frozenset()
    require_tls_binding: bool = False
    max_dev_quote_age: int = 300
    clock: Callable[[], int] = field(default=lambda: int(time.time()), repr=False)


@final
@dataclass(frozen=True)
class ServiceAttestation:
    """A verified service attestation.

    Attributes:
        label: ``attested`` (TDX) or ``unattested`` (dev).
        platform: ``dstack`` or ``dev``.
        compose_hash: the verified compose hash.
        app_id: the application id (from the verified event log when present).
        app_version: the version bound in REPORT_DATA.
        run_signer_pubkey_b64: the run-signer key bound in REPORT_DATA.
        tls_spki_sha256: the TLS key hash bound in REPORT_DATA, if any.
        claims: the verified quote claims.
    """

    label: str
    platform: str
    compose_hash: str
    app_id: str
    app_version: str
    run_signer_pubkey_b64: str
    tls_spki_sha256: bytes | None
    claims: QuoteClaims


def is_loopback_url(url: str) -> bool:
    """Whether ``url``'s host is ``localhost``, ``*.localhost`` or a loopback IP."""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_quote(doc: dict[str, Any], service_url: str, policy: VerificationPolicy) -> QuoteClaims:
    quote = bytes.fromhex(doc["quote_hex"])
    now = policy.clock()
    if doc["platform"] == "dev":
        if not policy.allow_dev and not is_loopback_url(service_url):
            raise AttestationRefused(
                "development attestation refused for a non-loopback service "
                "(allow it explicitly to proceed unattested)"
            )
        if not policy.dev_roots:
            raise AttestationRefused("development attestation needs a trusted dev root")
        claims = verify_dev_quote(quote, policy.dev_roots)
        if not now - policy.max_dev_quote_age <= claims.issued_at <= now + 60:
            raise AttestationRefused("development quote is not fresh")
        return claims
    claims = verify_tdx_quote(
        quote, collateral=policy.collateral, now=now, allowed_statuses=policy.allowed_tcb_statuses
    )
    check_tdx_claims(claims, policy)
    return claims


def check_tdx_claims(claims: QuoteClaims, policy: VerificationPolicy) -> None:
    """Apply the measurement policy to verified TDX claims.

    The debug attribute must be clear and MRTD, RTMR0, RTMR1 and RTMR2 must
    each be in the policy's allowlist (an empty allowlist accepts nothing).

    Raises:
        AttestationRefused: a check failed.
    """
    if claims.tcb_status not in policy.allowed_tcb_statuses:
        raise AttestationRefused(f"TDX TCB status {claims.tcb_status!r} is not accepted")
    if claims.debug:
        raise AttestationRefused("the TD runs in debug mode")
    checks = (
        (claims.mrtd, policy.allowed_mrtd, "MRTD"),
        (claims.rtmr[0], policy.allowed_rtmr0, "RTMR0"),
        (claims.rtmr[1], policy.allowed_rtmr1, "RTMR1"),
        (claims.rtmr[2], policy.allowed_rtmr2, "RTMR2"),
    )
    for value, allowed, name in checks:
        if value.lower() not in {a.lower() for a in allowed}:
            raise AttestationRefused(f"{name} is not an allowed OS image measurement")


def _compose_hash(doc: dict[str, Any], claims: QuoteClaims) -> tuple[str, str]:
    payloads = verified_event_payloads(doc["event_log"], claims.rtmr[3])
    if "compose-hash" not in payloads:
        raise AttestationRefused("event log has no compose-hash event")
    compose = payloads["compose-hash"].hex()
    if claims.compose_hash and claims.compose_hash != compose:
        raise AttestationRefused("MRCONFIGID and the event log disagree on the compose hash")
    served = hashlib.sha256(doc["app_compose"].encode("utf-8")).hexdigest()
    if not hmac.compare_digest(compose, doc["compose_hash"]) or served != compose:
        raise AttestationRefused("compose hash does not match the attested one")
    app_id = payloads["app-id"].hex() if "app-id" in payloads else ""
    if app_id and app_id != doc["app_id"].lower():
        raise AttestationRefused("app id does not match the attested one")
    return compose, app_id or doc["app_id"]


def _check_binding(
    doc: dict[str, Any],
    claims: QuoteClaims,
    nonce: bytes | None,
    observed_tls: bytes | None,
    policy: VerificationPolicy,
) -> bytes | None:
    if doc["nonce_hex"] != (nonce.hex() if nonce else ""):
        raise AttestationRefused("the attestation does not answer our nonce")
    bound_tls = bytes.fromhex(doc["tls_spki_sha256_hex"]) if doc["tls_spki_sha256_hex"] else None
    if observed_tls is not None and (
        bound_tls is None or not hmac.compare_digest(bound_tls, observed_tls)
    ):
        raise AttestationRefused("the TLS key of this connection is not the attested one")
    if policy.require_tls_binding and (bound_tls is None or observed_tls is None):
        raise AttestationRefused("TLS binding required but not available")
    if not report_data_matches(
        claims.report_data,
        app_version=doc["app_version"],
        run_signer_public_key=b64_decode(doc["run_signer_pubkey_b64"], length=32),
        tls_key_sha256=bound_tls,
        nonce=nonce,
    ):
        raise AttestationRefused("REPORT_DATA does not bind the served keys and nonce")
    return bound_tls


def verify_service_attestation(
    doc: Any,
    *,
    service_url: str,
    nonce: bytes | None,
    policy: VerificationPolicy,
    observed_tls_spki_sha256: bytes | None = None,
) -> ServiceAttestation:
    """Verify a service's attestation document.

    Args:
        doc: the decoded document (untrusted).
        service_url: the service base URL the client is talking to.
        nonce: the nonce the client sent (recommended), or None.
        policy: what to accept.
        observed_tls_spki_sha256: SHA-256 of the TLS key's SPKI seen on the
            connection (https), if any.

    Returns:
        The verified attestation.

    Raises:
        AttestationRefused: any check failed.
        AttestationUnavailable: TDX collateral could not be obtained.
    """
    checked = parse_attestation_document(doc)
    claims = _check_quote(checked, service_url, policy)
    compose, app_id = _compose_hash(checked, claims)
    bound_tls = _check_binding(checked, claims, nonce, observed_tls_spki_sha256, policy)
    if policy.allowed_composes and compose not in policy.allowed_composes:
        raise AttestationRefused("compose hash is not in the allowed list")
    return ServiceAttestation(
        label=ATTESTED if claims.platform == "dstack" else UNATTESTED,
        platform=claims.platform,
        compose_hash=compose,
        app_id=app_id,
        app_version=checked["app_version"],
        run_signer_pubkey_b64=checked["run_signer_pubkey_b64"],
        tls_spki_sha256=bound_tls,
        claims=claims,
    )
