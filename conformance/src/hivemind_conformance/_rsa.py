"""RSA pieces of INTERCOM (docs/spec §7.4) for the suite and the reference hub.

The suite builds legacy envelopes itself: ``ciphertext`` is RSA-OAEP (SHA-1,
MGF1-SHA-1, no label) of the inner message under the addressee's key, and
``signature`` is RSA-PSS (SHA-256, MGF1-SHA-256, 32-byte salt) by the sender
over the raw ciphertext bytes; both fields are standard base64 text.
``verify`` is the check a hub makes against the sender's HELLO ``pubkey``;
every failure is a plain False.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

#: Longest PEM text parsed and largest signature decoded (RSA-4096 sizes, with room).
MAX_PEM_CHARS: Final = 4096
MAX_SIGNATURE_CHARS: Final = 1024


def new_key() -> rsa.RSAPrivateKey:
    """A fresh RSA-2048 key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> str:
    """The public half of ``key`` as SubjectPublicKeyInfo PEM text."""
    raw = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return raw.decode("ascii")


def _oaep() -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)


def seal(recipient_pem: str, plaintext: bytes, signer: rsa.RSAPrivateKey) -> dict[str, str]:
    """A legacy INTERCOM payload for ``recipient_pem``, signed by ``signer``.

    Raises:
        ValueError: the key is not RSA or the plaintext does not fit OAEP.
    """
    recipient = serialization.load_pem_public_key(recipient_pem.encode("ascii"))
    if not isinstance(recipient, rsa.RSAPublicKey):
        raise ValueError("the recipient key is not RSA")
    ciphertext = recipient.encrypt(plaintext, _oaep())
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    signature = signer.sign(ciphertext, pss, hashes.SHA256())
    return {
        "ciphertext": base64.b64encode(ciphertext).decode("ascii"),
        "signature": base64.b64encode(signature).decode("ascii"),
    }


def verify(pubkey_pem: Any, payload: Any) -> bool:
    """Whether ``payload``'s signature over its ciphertext verifies under ``pubkey_pem``."""
    if not isinstance(pubkey_pem, str) or len(pubkey_pem) > MAX_PEM_CHARS:
        return False
    if not isinstance(payload, dict):
        return False
    ciphertext, signature = payload.get("ciphertext"), payload.get("signature")
    if not isinstance(ciphertext, str) or not isinstance(signature, str):
        return False
    if len(signature) > MAX_SIGNATURE_CHARS:
        return False
    try:
        key = serialization.load_pem_public_key(pubkey_pem.encode("ascii"))
        if not isinstance(key, rsa.RSAPublicKey):
            return False
        data = base64.b64decode(ciphertext, validate=True)
        sig = base64.b64decode(signature, validate=True)
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
        key.verify(sig, data, pss, hashes.SHA256())
    except (InvalidSignature, ValueError, TypeError, UnicodeError, binascii.Error):
        return False
    return True
