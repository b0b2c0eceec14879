"""The service attestation document (``GET /v1/attestation[?nonce=<hex>]``).

Theory of operation: the service asks its provider for a quote whose
REPORT_DATA binds the app version, the run-signer key, the TLS key hash and
the client's nonce, and serves it with everything a client needs to check it:
the event log, the app compose, and the values bound into REPORT_DATA. The
document's own ``label`` is informational; the client decides for itself
with :func:`hivemind_rooms.attestation.verify.verify_service_attestation`.
"""

from __future__ import annotations

import re
from typing import Any

from hivemind_rooms.attestation._types import (
    ATTESTED,
    UNATTESTED,
    AttestationProvider,
    AttestationRefused,
)
from hivemind_rooms.attestation.report_data import build_report_data
from hivemind_rooms.attestation.run_signer import RunSigner
from hivemind_rooms.canonical import CanonicalError, b64_decode

__all__ = ["DOCUMENT_SCHEMA", "build_attestation_document", "parse_attestation_document"]

DOCUMENT_SCHEMA = "hivemind.attestation.v1"
_KEYS = frozenset(
    {
        "schema", "platform", "label", "app_version", "quote_hex", "event_log", "app_id",
        "instance_id", "compose_hash", "app_compose", "run_signer_pubkey_b64",
        "tls_spki_sha256_hex", "nonce_hex",
    }
)  # fmt: skip
_HEX = re.compile(r"^(?:[0-9a-f]{2})*$")
_MAX_FIELD = 1024 * 1024


def build_attestation_document(
    provider: AttestationProvider,
    *,
    app_version: str,
    run_signer: RunSigner,
    tls_spki_sha256: bytes | None = None,
    nonce: bytes | None = None,
) -> dict[str, Any]:
    """Quote the service's identity and return the attestation document.

    Raises:
        AttestationUnavailable: the provider cannot quote.
        ValueError: a bad nonce or key length.
    """
    report_data = build_report_data(
        app_version=app_version,
        run_signer_public_key=run_signer.public_key(),
        tls_key_sha256=tls_spki_sha256,
        nonce=nonce,
    )
    info = provider.info()
    quote = provider.quote(report_data)
    return {
        "schema": DOCUMENT_SCHEMA,
        "platform": provider.kind,
        "label": ATTESTED if provider.kind == "dstack" else UNATTESTED,
        "app_version": app_version,
        "quote_hex": quote.quote.hex(),
        "event_log": quote.event_log,
        "app_id": info.app_id,
        "instance_id": info.instance_id,
        "compose_hash": info.compose_hash,
        "app_compose": info.app_compose,
        "run_signer_pubkey_b64": run_signer.public_key_b64(),
        "tls_spki_sha256_hex": tls_spki_sha256.hex() if tls_spki_sha256 else "",
        "nonce_hex": nonce.hex() if nonce else "",
    }


def parse_attestation_document(doc: Any) -> dict[str, Any]:
    """Check the document's shape strictly and return it.

    Raises:
        AttestationRefused: unknown or missing keys, wrong types, bad hex or
            base64, or oversized fields.
    """
    if not isinstance(doc, dict) or set(doc) != _KEYS or doc["schema"] != DOCUMENT_SCHEMA:
        raise AttestationRefused("attestation document malformed")
    if not all(isinstance(v, str) and len(v) <= _MAX_FIELD for v in doc.values()):
        raise AttestationRefused("attestation document malformed")
    if doc["platform"] not in ("dev", "dstack"):
        raise AttestationRefused("attestation document names an unknown platform")
    for name in ("quote_hex", "tls_spki_sha256_hex", "nonce_hex", "compose_hash"):
        if not _HEX.fullmatch(doc[name]):
            raise AttestationRefused("attestation document malformed")
    if len(doc["tls_spki_sha256_hex"]) not in (0, 64) or len(doc["compose_hash"]) != 64:
        raise AttestationRefused("attestation document malformed")
    try:
        b64_decode(doc["run_signer_pubkey_b64"], length=32)
    except CanonicalError as exc:
        raise AttestationRefused("attestation document malformed") from exc
    return doc
