"""The hub's own identity, kept in its data directory.

Three values, each generated once and then reused on every start:

* an RSA-2048 key (``hub_identity.pem``, mode 0600) whose public half is the
  ``pubkey`` of the hub HELLO; released clients parse it as a PEM key;
* an X25519 Noise static key (``noise_static.key``, mode 0600) for profile N;
* a random ``node_id`` (``node_id``): unique per hub, so route hops name one
  hub (the legacy hub used ``master:0.0.0.0`` everywhere, which made loop
  detection impossible; spec W21).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hivemind_proto import StaticKeypair

__all__ = ["HubIdentity", "load_identity"]

RSA_FILE: Final = "hub_identity.pem"
NOISE_FILE: Final = "noise_static.key"
NODE_ID_FILE: Final = "node_id"


@dataclass(frozen=True)
class HubIdentity:
    """Who this hub is.

    Attributes:
        node_id: Unique id of this hub (``hub-<32 hex>``).
        public_pem: The RSA public key, PEM text (HELLO ``pubkey``).
        noise: The Noise static key pair.
        site_id: The hub's own site id (BUS inside site-targeted wrappers).
        rsa_private_pem: The RSA private key, PKCS#8 PEM (opens INTERCOM
            addressed to the hub); empty when not loaded.
    """

    node_id: str
    public_pem: str
    noise: StaticKeypair = field(repr=False)
    site_id: str = "hub"
    rsa_private_pem: bytes = field(default=b"", repr=False)

    def hello(self, peer: str) -> dict[str, str]:
        """Return the hub HELLO payload for a connection named ``peer``."""
        return {"pubkey": self.public_pem, "peer": peer, "node_id": self.node_id}


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def _rsa_private_pem(directory: Path) -> bytes:
    path = directory / RSA_FILE
    if not path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_private(path, pem)
    return path.read_bytes()


def _public_pem(private_pem: bytes) -> str:
    private = serialization.load_pem_private_key(private_pem, password=None)
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return public.decode("ascii")


def _noise_key(directory: Path) -> StaticKeypair:
    path = directory / NOISE_FILE
    if not path.exists():
        _write_private(path, StaticKeypair.generate(os.urandom).private_bytes())
    return StaticKeypair.from_private_bytes(path.read_bytes())


def _node_id(directory: Path) -> str:
    path = directory / NODE_ID_FILE
    if not path.exists():
        _write_private(path, f"hub-{secrets.token_hex(16)}".encode())
    return path.read_text(encoding="ascii").strip()


def load_identity(directory: Path, *, site_id: str = "hub") -> HubIdentity:
    """Load the hub identity from ``directory``, creating what is missing.

    Args:
        directory: The hub data directory (created if needed).
        site_id: The hub's site id.

    Returns:
        The identity; the same values on every later call for this directory.
    """
    directory.mkdir(parents=True, exist_ok=True)
    private_pem = _rsa_private_pem(directory)
    return HubIdentity(
        node_id=_node_id(directory),
        public_pem=_public_pem(private_pem),
        noise=_noise_key(directory),
        site_id=site_id,
        rsa_private_pem=private_pem,
    )
