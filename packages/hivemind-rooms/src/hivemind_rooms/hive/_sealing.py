"""End-to-end sealing between a participant and the attested room service.

Theory of operation
-------------------
Hubs relay room requests between a participant and the room service, so the
requests and answers must mean nothing to them and be impossible for them to
alter without detection.

* **The seal key.** The service derives an X25519 key pair from its
  attestation provider (a path that names the compose hash), so it exists
  only inside the attested instance. Its public half is published in a
  *seal-key statement*: a canonical JSON body signed by the run signer. The
  quote's REPORT_DATA binds the run-signer key, so a participant that has
  verified the service attestation can verify the statement and knows the
  seal key belongs to the same attested instance. REPORT_DATA itself stays
  unchanged.
* **Requests** are sealed to that key with an anonymous sealed box
  (X25519 + XSalsa20-Poly1305, pynacl). A sealed box carries no associated
  data, so the values that would be associated data (operation, room id and
  the participant's fresh nonce) are inside the sealed plaintext and repeated
  in the clear envelope; the service refuses any mismatch. Each request also
  carries a fresh reply key, generated per request by the participant.
* **Answers** are sealed to that reply key. A relaying hub holds neither
  private key, so it can read neither direction, and any change to a sealed
  blob fails authentication. The answer of an ask holds the run attestation
  signed by the run signer, which covers the prompt hash and the output
  hash: even a hub that could forge a sealed box could not forge an answer.

Every failure raises :class:`SealError` with no detail on why.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, final

from nacl.exceptions import BadSignatureError, CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox
from nacl.signing import VerifyKey

from ..attestation import AttestationProvider, RunSigner, ServiceAttestation
from ..canonical import CanonicalError, b64_decode, b64_encode, canonical_json

__all__ = [
    "MAX_SEALED_BYTES",
    "SEAL_STATEMENT_SCHEMA",
    "OpenedRequest",
    "ReplyKey",
    "SealError",
    "SealKey",
    "open_reply",
    "seal_request",
    "verify_seal_statement",
]

SEAL_STATEMENT_SCHEMA = "hivemind.seal-key.v1"
_REQUEST_SCHEMA = "hivemind.room.sealed-request.v1"
_REPLY_SCHEMA = "hivemind.room.sealed-reply.v1"
_STATEMENT_KEYS = frozenset({"schema", "seal_pubkey_b64", "compose_hash", "signer_pubkey_b64"})
_NONCE = re.compile(r"^[0-9a-f]{32,64}$")
#: The largest sealed blob either side opens (a request carries the prompt).
MAX_SEALED_BYTES = 1024 * 1024


class SealError(Exception):
    """A sealed request, reply or seal-key statement was refused."""

    def __init__(self) -> None:
        super().__init__("sealed message refused")


def _dumps(obj: Mapping[str, Any]) -> bytes:
    # Sealed plaintexts are transport, not signed objects: plain JSON (room
    # objects carry float timestamps, which canonical JSON refuses).
    try:
        text = json.dumps(dict(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SealError() from exc
    return text.encode("utf-8")


def _loads(data: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise SealError() from exc
    if not isinstance(obj, dict):
        raise SealError()
    return obj


def _decode(text: Any, length: int | None = None) -> bytes:
    if not isinstance(text, str) or len(text) > 2 * MAX_SEALED_BYTES:
        raise SealError()
    try:
        return b64_decode(text, length=length)
    except CanonicalError as exc:
        raise SealError() from exc


def _check_nonce(nonce: Any) -> str:
    if not isinstance(nonce, str) or not _NONCE.fullmatch(nonce):
        raise SealError()
    return nonce


@final
class SealKey:
    """The service's sealing key pair (private half never leaves this object).

    Args:
        private: the 32-byte X25519 private key.
    """

    def __init__(self, private: bytes) -> None:
        self._private = PrivateKey(private)

    @classmethod
    def from_provider(cls, provider: AttestationProvider, *, compose_hash: str) -> SealKey:
        """Derive the key from the attested platform (deterministic per deployment)."""
        return cls(provider.derive_key(f"hivemind-rooms/bridge-seal/v1/{compose_hash}"))

    def public_key_b64(self) -> str:
        """The public half, standard base64."""
        return b64_encode(bytes(self._private.public_key))

    def statement(self, signer: RunSigner, *, compose_hash: str) -> dict[str, Any]:
        """The seal-key statement signed by the run signer."""
        body = {
            "schema": SEAL_STATEMENT_SCHEMA,
            "seal_pubkey_b64": self.public_key_b64(),
            "compose_hash": compose_hash,
            "signer_pubkey_b64": signer.public_key_b64(),
        }
        return {"body": body, "signature_b64": b64_encode(signer.sign(canonical_json(body)))}

    def open_request(self, envelope: Mapping[str, Any], *, op: str) -> OpenedRequest:
        """Open a sealed request and check it against its clear envelope.

        Args:
            envelope: ``{"room_id", "nonce", "sealed_b64"}`` as relayed.
            op: the operation the message type names.

        Raises:
            SealError: any failure.
        """
        sealed = _decode(envelope.get("sealed_b64"))
        if len(sealed) > MAX_SEALED_BYTES:
            raise SealError()
        try:
            inner = _loads(SealedBox(self._private).decrypt(sealed))
        except CryptoError as exc:
            raise SealError() from exc
        nonce = _check_nonce(envelope.get("nonce"))
        expected = (_REQUEST_SCHEMA, op, envelope.get("room_id"), nonce)
        got = (inner.get("schema"), inner.get("op"), inner.get("room_id"), inner.get("nonce"))
        if expected != got or not isinstance(inner.get("body"), dict):
            raise SealError()
        reply = PublicKey(_decode(inner.get("reply_pubkey_b64"), length=32))
        return OpenedRequest(op, str(inner["room_id"]), nonce, inner["body"], reply)

    def __repr__(self) -> str:
        return f"SealKey(public={self.public_key_b64()!r})"


@final
@dataclass(frozen=True)
class OpenedRequest:
    """A request the service opened.

    Attributes:
        op: ``inspect`` or ``ask``.
        room_id: the room asked.
        nonce: the participant's nonce (hex).
        body: the sealed body (credentials, question, budgets).
        reply_key: where the answer is sealed to.
    """

    op: str
    room_id: str
    nonce: str
    body: dict[str, Any] = field(repr=False)
    reply_key: PublicKey = field(repr=False)

    def seal_reply(self, kind: str, body: Mapping[str, Any]) -> str:
        """Seal a reply of ``kind`` (``answer`` or ``error``) to the participant."""
        plain = {
            "schema": _REPLY_SCHEMA,
            "op": self.op,
            "room_id": self.room_id,
            "nonce": self.nonce,
            "kind": kind,
            "body": dict(body),
        }
        return b64_encode(SealedBox(self.reply_key).encrypt(_dumps(plain)))


@final
class ReplyKey:
    """The participant's one-request reply key pair."""

    def __init__(self) -> None:
        self._private = PrivateKey.generate()

    def public_key_b64(self) -> str:
        """The public half, standard base64."""
        return b64_encode(bytes(self._private.public_key))

    def open(self, sealed_b64: Any) -> bytes:
        """Open a sealed reply's bytes.

        Raises:
            SealError: any failure.
        """
        sealed = _decode(sealed_b64)
        if len(sealed) > 4 * MAX_SEALED_BYTES:
            raise SealError()
        try:
            return bytes(SealedBox(self._private).decrypt(sealed))
        except CryptoError as exc:
            raise SealError() from exc

    def __repr__(self) -> str:
        return "ReplyKey(<one request>)"


def verify_seal_statement(statement: Any, service: ServiceAttestation) -> bytes:
    """Verify a seal-key statement against a *verified* service attestation.

    The statement's signer must be the run-signer key the quote binds and
    its compose hash the verified one; the signature must verify over the
    canonical body.

    Returns:
        The raw 32-byte seal public key.

    Raises:
        SealError: any failure.
    """
    if not isinstance(statement, dict) or set(statement) != {"body", "signature_b64"}:
        raise SealError()
    body = statement["body"]
    if not isinstance(body, dict) or set(body) != _STATEMENT_KEYS:
        raise SealError()
    if body["schema"] != SEAL_STATEMENT_SCHEMA:
        raise SealError()
    signer = body["signer_pubkey_b64"]
    compose = body["compose_hash"]
    if not isinstance(signer, str) or not isinstance(compose, str):
        raise SealError()
    if not hmac.compare_digest(signer, service.run_signer_pubkey_b64):
        raise SealError()
    if not hmac.compare_digest(compose, service.compose_hash):
        raise SealError()
    try:
        VerifyKey(_decode(signer, length=32)).verify(
            canonical_json(body), _decode(statement["signature_b64"], length=64)
        )
    except (BadSignatureError, CanonicalError, ValueError) as exc:
        raise SealError() from exc
    return _decode(body["seal_pubkey_b64"], length=32)


def seal_request(
    seal_public_key: bytes, *, op: str, room_id: str, nonce: str, body: Mapping[str, Any]
) -> tuple[dict[str, Any], ReplyKey]:
    """Seal a request for the service.

    Args:
        seal_public_key: the key from :func:`verify_seal_statement`.
        op: ``inspect`` or ``ask``.
        room_id: the room.
        nonce: a fresh hex nonce (16 to 32 bytes).
        body: the secret body.

    Returns:
        The clear envelope to relay and the reply key to open the answer with.
    """
    _check_nonce(nonce)
    reply = ReplyKey()
    plain = {
        "schema": _REQUEST_SCHEMA,
        "op": op,
        "room_id": room_id,
        "nonce": nonce,
        "reply_pubkey_b64": reply.public_key_b64(),
        "body": dict(body),
    }
    sealed = SealedBox(PublicKey(seal_public_key)).encrypt(_dumps(plain))
    return {"room_id": room_id, "nonce": nonce, "sealed_b64": b64_encode(sealed)}, reply


def open_reply(
    reply_key: ReplyKey, sealed_b64: Any, *, op: str, room_id: str, nonce: str
) -> tuple[str, dict[str, Any]]:
    """Open a sealed reply and check it answers this request.

    Returns:
        ``(kind, body)``: kind is ``answer`` or ``error``.

    Raises:
        SealError: any failure.
    """
    inner = _loads(reply_key.open(sealed_b64))
    expected = (_REPLY_SCHEMA, op, room_id, nonce)
    got = (inner.get("schema"), inner.get("op"), inner.get("room_id"), inner.get("nonce"))
    if expected != got or inner.get("kind") not in ("answer", "error"):
        raise SealError()
    if not isinstance(inner.get("body"), dict):
        raise SealError()
    return str(inner["kind"]), inner["body"]
