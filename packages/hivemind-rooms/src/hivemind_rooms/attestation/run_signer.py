"""The run signer: the service's Ed25519 key for signing run attestations.

Theory of operation: the key is derived from the attestation provider
(dstack KMS, or the dev app secret), so it never leaves the instance and is
stable across restarts. Upstream derived one key per application, shared by
every compose the app's governance ever approved; here the derivation path
also includes the compose hash, so a different deployment signs with a
different key. The public key is bound into every quote's REPORT_DATA, which
is how a client knows a signed run came from the instance it attested.
"""

from __future__ import annotations

from typing import final

from nacl.signing import SigningKey

from hivemind_rooms.attestation._types import AttestationProvider
from hivemind_rooms.canonical import b64_encode

__all__ = ["RUN_SIGNER_KEY_PATH", "RunSigner"]

RUN_SIGNER_KEY_PATH = "hivemind-rooms/run-signer/v1"


@final
class RunSigner:
    """An Ed25519 run-signing key. The repr shows the public key only.

    Args:
        seed: the 32-byte RFC 8032 seed.
    """

    __slots__ = ("_sk",)

    def __init__(self, seed: bytes) -> None:
        if not isinstance(seed, bytes) or len(seed) != 32:
            raise ValueError("the run-signer seed is 32 bytes")
        self._sk = SigningKey(seed)

    @classmethod
    def from_provider(cls, provider: AttestationProvider, *, compose_hash: str) -> RunSigner:
        """Derive the signer for this deployment from the provider's key service."""
        return cls(provider.derive_key(f"{RUN_SIGNER_KEY_PATH}/{compose_hash}"))

    def public_key(self) -> bytes:
        """The raw 32-byte public key."""
        return bytes(self._sk.verify_key)

    def public_key_b64(self) -> str:
        """The public key as standard padded base64."""
        return b64_encode(self.public_key())

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message``."""
        return self._sk.sign(message).signature

    def __repr__(self) -> str:
        return f"RunSigner(public_key_b64={self.public_key_b64()!r})"
