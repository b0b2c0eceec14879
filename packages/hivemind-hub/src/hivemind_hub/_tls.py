"""TLS for the hub listeners: load ``<cert_dir>/<cert_name>.crt``/``.key``, or create them.

A missing pair is generated once: a self-signed certificate for the host name,
RSA-2048 signed with SHA-256 (the legacy hub signed with SHA-1; spec W25),
valid for one year, private key written with mode 0600.
"""

from __future__ import annotations

import datetime
import os
import socket
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

__all__ = ["ensure_certificate", "server_ssl_context"]


def ensure_certificate(cert_dir: Path, name: str) -> tuple[Path, Path]:
    """Return ``(cert, key)`` paths, generating a self-signed pair if missing."""
    cert, key_path = cert_dir / f"{name}.crt", cert_dir / f"{name}.key"
    if cert.exists() and key_path.exists():
        return cert, key_path
    cert_dir.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, socket.gethostname())])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.DNSName(socket.gethostname())]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert, key_path


def server_ssl_context(cert_dir: Path, name: str) -> ssl.SSLContext:
    """Return a server TLS context (TLS 1.2 or newer) for the hub listeners."""
    cert, key = ensure_certificate(cert_dir, name)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context
