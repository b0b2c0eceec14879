"""The 64-byte REPORT_DATA layout a quote binds.

Theory of operation: a quote proves that *some* code measured as X produced
REPORT_DATA. What makes that useful is what REPORT_DATA commits to. Ours
commits to the run-signer public key (so signed run attestations come from
the attested instance), the SHA-256 of the TLS key's SubjectPublicKeyInfo (so
the channel the client talks over ends inside the instance) and an optional
client nonce (so a quote cannot be replayed by a later or other instance).

Layout (version 3)::

    SHA-256( lp("hivemind-rooms-report-data-v3") || lp(app_version)
             || lp(run_signer_public_key) || lp(tls_spki_sha256 or b"")
             || lp(nonce or b"") )                                   32 bytes
    0x03                                                             version
    flags: bit 0 = TLS key bound, bit 1 = nonce bound                1 byte
    30 x 0x00

``lp(x)`` is a 4-byte big-endian length followed by ``x``, so no two inputs
share an encoding.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

__all__ = [
    "NONCE_MAX",
    "NONCE_MIN",
    "REPORT_DATA_VERSION",
    "build_report_data",
    "report_data_matches",
    "tls_spki_sha256",
]

REPORT_DATA_VERSION = 3
_TAG = b"hivemind-rooms-report-data-v3"
_FLAG_TLS = 1
_FLAG_NONCE = 2
NONCE_MIN = 16
NONCE_MAX = 32


def _lp(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def build_report_data(
    *,
    app_version: str,
    run_signer_public_key: bytes,
    tls_key_sha256: bytes | None = None,
    nonce: bytes | None = None,
) -> bytes:
    """Build the 64 bytes of REPORT_DATA.

    Args:
        app_version: the service version string.
        run_signer_public_key: the raw 32-byte Ed25519 run-signer key.
        tls_key_sha256: SHA-256 of the TLS key's SPKI DER (32 bytes), if TLS
            terminates inside the instance.
        nonce: a client nonce of 16 to 32 bytes, for freshness.

    Returns:
        64 bytes.

    Raises:
        ValueError: a length is wrong.
    """
    if len(run_signer_public_key) != 32:
        raise ValueError("the run-signer key is 32 bytes")
    if tls_key_sha256 is not None and len(tls_key_sha256) != 32:
        raise ValueError("the TLS key hash is 32 bytes")
    if nonce is not None and not NONCE_MIN <= len(nonce) <= NONCE_MAX:
        raise ValueError("a nonce is 16 to 32 bytes")
    digest = hashlib.sha256(
        _lp(_TAG)
        + _lp(app_version.encode("utf-8"))
        + _lp(run_signer_public_key)
        + _lp(tls_key_sha256 or b"")
        + _lp(nonce or b"")
    ).digest()
    flags = (_FLAG_TLS if tls_key_sha256 is not None else 0) | (
        _FLAG_NONCE if nonce is not None else 0
    )
    return digest + bytes([REPORT_DATA_VERSION, flags]) + bytes(30)


def report_data_matches(
    report_data: bytes,
    *,
    app_version: str,
    run_signer_public_key: bytes,
    tls_key_sha256: bytes | None = None,
    nonce: bytes | None = None,
) -> bool:
    """Whether ``report_data`` binds exactly these values (constant time)."""
    try:
        expected = build_report_data(
            app_version=app_version,
            run_signer_public_key=run_signer_public_key,
            tls_key_sha256=tls_key_sha256,
            nonce=nonce,
        )
    except ValueError:
        return False
    return isinstance(report_data, bytes) and hmac.compare_digest(expected, report_data)


def tls_spki_sha256(certificate: bytes) -> bytes:
    """SHA-256 of the SubjectPublicKeyInfo of a PEM or DER certificate."""
    if certificate.lstrip().startswith(b"-----BEGIN"):
        cert = x509.load_pem_x509_certificate(certificate)
    else:
        cert = x509.load_der_x509_certificate(certificate)
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).digest()
