"""The ``hivemind.room.v1`` manifest: building, hashing, signing, verifying.

Theory of operation: a room is an agreement. The owner's client builds the
manifest, signs its canonical bytes (:mod:`hivemind_rooms.canonical`) with the
owner's Ed25519 key (:class:`OwnerKey`, held by the owner, never by the
service) and uploads the *envelope*::

    {"manifest": {...}, "manifest_hash": hex, "signature_b64": b64,
     "signer_pubkey_b64": b64}

The service stores envelopes and the owner's public key only. A participant
checks an envelope against the owner key carried in the invite link with
:func:`verify_signed_manifest`; every failure raises :class:`ManifestError`
with one fixed message per failure class (see :class:`ManifestFailure`) and no
further detail.

Differences from the upstream manifest, on purpose: ``created_at`` and
``updated_at`` are integers (floats are not canonical across languages), the
schema is validated strictly (unknown keys are refused), and a strict trust
mode always carries at least one compose hash. The manifest layout itself is
validated in :mod:`hivemind_rooms._manifest_schema`.

A trust update (:func:`sign_trust_update`, :func:`verify_trust_update`) is a
new envelope signed the same way whose manifest differs from the previous one
only in ``trust`` and ``updated_at``; its hash differs, so participants must
accept again.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any, final

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from hivemind_rooms._manifest_schema import (
    KNOWN_LLM_PROVIDERS,
    SCHEMA,
    ManifestError,
    ManifestFailure,
    check_room_trust,
    normalise_composes,
    normalise_providers,
    normalise_tables,
    validate_manifest,
)
from hivemind_rooms.canonical import CanonicalError, b64_decode, b64_encode, canonical_json
from hivemind_rooms.canonical import sha256_hex as _sha256_hex
from hivemind_rooms.credentials import Rng

__all__ = [
    "KNOWN_LLM_PROVIDERS",
    "SCHEMA",
    "ManifestError",
    "ManifestFailure",
    "OwnerKey",
    "build_manifest",
    "check_room_trust",
    "invite_constraints",
    "manifest_hash",
    "sign_manifest",
    "sign_trust_update",
    "validate_manifest",
    "verify_signed_manifest",
    "verify_trust_update",
]

_ENVELOPE_KEYS = frozenset({"manifest", "manifest_hash", "signature_b64", "signer_pubkey_b64"})


@final
class OwnerKey:
    """The room owner's Ed25519 signing key (kept on the owner's machine).

    The repr shows the public key only.
    """

    __slots__ = ("_sk",)

    def __init__(self, signing_key: SigningKey) -> None:
        self._sk = signing_key

    @classmethod
    def generate(cls, *, rng: Rng | None = None) -> OwnerKey:
        """Create a fresh key (from ``rng`` if given, else the OS)."""
        if rng is None:
            return cls(SigningKey.generate())
        return cls.from_seed(rng(32))

    @classmethod
    def from_seed(cls, seed: bytes) -> OwnerKey:
        """Rebuild a key from its 32-byte RFC 8032 seed."""
        if not isinstance(seed, bytes) or len(seed) != 32:
            raise ValueError("an Ed25519 seed is 32 bytes")
        return cls(SigningKey(seed))

    def export_seed(self) -> bytes:
        """Return the 32-byte secret seed (for the owner's own key file only)."""
        return bytes(self._sk)

    def public_key(self) -> bytes:
        """The raw 32-byte public key."""
        return bytes(self._sk.verify_key)

    def public_key_b64(self) -> str:
        """The public key as standard padded base64 (44 characters)."""
        return b64_encode(self.public_key())

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature of ``message``."""
        return self._sk.sign(message).signature

    def __repr__(self) -> str:
        return f"OwnerKey(public_key_b64={self.public_key_b64()!r})"


def manifest_hash(manifest: Mapping[str, Any]) -> str:
    """Lowercase hex SHA-256 of the manifest's canonical bytes."""
    return _sha256_hex(canonical_json(dict(manifest)))


def build_manifest(
    *,
    room_id: str,
    tenant_id: str,
    owner_pubkey_b64: str,
    scope_agent_id: str,
    created_at: int,
    name: str = "",
    rules: str = "",
    policy: str | None = None,
    scope_visibility: str = "inspectable",
    query_mode: str = "uploadable",
    query_agent_id: str = "",
    query_visibility: str = "sealed",
    mediator_agent_id: str = "",
    mediator_visibility: str = "inspectable",
    output_visibility: str = "querier_only",
    llm_providers: Iterable[str] = ("openrouter",),
    allow_artifacts: bool = True,
    trust_mode: str = "operator_updates",
    allowed_composes: Iterable[str] = (),
    allowed_tables: Iterable[str] = (),
) -> dict[str, Any]:
    """Build and validate a ``hivemind.room.v1`` manifest.

    Inputs are normalised as the room-creation request does it: the name and
    agent ids are stripped, providers lowercased and deduplicated, compose
    hashes trimmed and lowercased, tables deduplicated case-insensitively
    (first spelling kept). ``policy=None`` means "same as the rules".

    Returns:
        The manifest as a plain dict.

    Raises:
        ManifestError: (``SCHEMA``) any field is invalid.
    """
    mediator: dict[str, Any] = {"agent_id": mediator_agent_id.strip()}
    if mediator["agent_id"]:
        mediator["visibility"] = mediator_visibility
    manifest: dict[str, Any] = {
        "schema": SCHEMA,
        "room_id": room_id,
        "tenant_id": tenant_id,
        "name": name.strip(),
        "rules": rules,
        "rules_hash": _sha256_hex(rules.encode("utf-8", "surrogatepass")),
        "policy": rules if policy is None else policy,
        "scope": {"agent_id": scope_agent_id.strip(), "visibility": scope_visibility},
        "query": {
            "mode": query_mode,
            "agent_id": query_agent_id.strip(),
            "visibility": query_visibility,
        },
        "mediator": mediator,
        "output": {"visibility": output_visibility},
        "egress": {
            "llm_providers": normalise_providers(llm_providers),
            "allow_artifacts": allow_artifacts,
        },
        "trust": {"mode": trust_mode, "allowed_composes": normalise_composes(allowed_composes)},
        "allowed_tables": normalise_tables(allowed_tables),
        "created_at": created_at,
        "owner_pubkey_b64": owner_pubkey_b64,
    }
    return validate_manifest(manifest)


def sign_manifest(manifest: Mapping[str, Any], owner_key: OwnerKey) -> dict[str, Any]:
    """Validate ``manifest`` and wrap it in a signed envelope.

    Raises:
        ManifestError: ``SCHEMA`` if the manifest is invalid, ``WRONG_OWNER_KEY``
            if its ``owner_pubkey_b64`` is not ``owner_key``'s public key.
    """
    body = validate_manifest(copy.deepcopy(dict(manifest)))
    if body["owner_pubkey_b64"] != owner_key.public_key_b64():
        raise ManifestError(ManifestFailure.WRONG_OWNER_KEY)
    data = _canonical(body)
    return {
        "manifest": body,
        "manifest_hash": _sha256_hex(data),
        "signature_b64": b64_encode(owner_key.sign(data)),
        "signer_pubkey_b64": owner_key.public_key_b64(),
    }


def verify_signed_manifest(
    envelope: Any,
    expected_owner_public_key: str,
    *,
    expected_room_id: str | None = None,
    expected_tenant_id: str | None = None,
) -> dict[str, Any]:
    """Verify a signed room envelope against the owner key from the link.

    Checks, in order: envelope shape; signer key equals the expected owner
    key; ``manifest.owner_pubkey_b64`` equals the signer; manifest schema;
    ``manifest_hash`` equals the hash of the canonical bytes; the Ed25519
    signature; then the room and tenant ids if expected values are given.

    Args:
        envelope: the decoded envelope (untrusted).
        expected_owner_public_key: standard base64 of the owner's public key,
            taken from the invite link or the owner's registration.
        expected_room_id: the room id the caller asked for (the link's).
        expected_tenant_id: the tenant the room must belong to, if known.

    Returns:
        A deep copy of the verified manifest.

    Raises:
        ManifestError: with the failure class as ``exc.failure``.
    """
    manifest, signature, signer = _split_envelope(envelope)
    if signer != _decode_key(expected_owner_public_key):
        raise ManifestError(ManifestFailure.WRONG_OWNER_KEY)
    if manifest.get("owner_pubkey_b64") != envelope["signer_pubkey_b64"]:
        raise ManifestError(ManifestFailure.WRONG_OWNER_KEY)
    validate_manifest(manifest)
    data = _canonical(manifest)
    if _sha256_hex(data) != envelope["manifest_hash"]:
        raise ManifestError(ManifestFailure.HASH_MISMATCH)
    try:
        VerifyKey(signer).verify(data, signature)
    except (BadSignatureError, ValueError) as exc:
        raise ManifestError(ManifestFailure.BAD_SIGNATURE) from exc
    if expected_room_id is not None and manifest["room_id"] != expected_room_id:
        raise ManifestError(ManifestFailure.WRONG_ROOM)
    if expected_tenant_id is not None and manifest["tenant_id"] != expected_tenant_id:
        raise ManifestError(ManifestFailure.WRONG_ROOM)
    return manifest


def _canonical(manifest: Mapping[str, Any]) -> bytes:
    try:
        return canonical_json(dict(manifest))
    except CanonicalError as exc:
        raise ManifestError(ManifestFailure.SCHEMA) from exc


def _split_envelope(envelope: Any) -> tuple[dict[str, Any], bytes, bytes]:
    if not isinstance(envelope, dict) or set(envelope) != _ENVELOPE_KEYS:
        raise ManifestError(ManifestFailure.SCHEMA)
    manifest = envelope["manifest"]
    digest = envelope["manifest_hash"]
    if not isinstance(manifest, dict) or not isinstance(digest, str):
        raise ManifestError(ManifestFailure.SCHEMA)
    try:
        signature = b64_decode(envelope["signature_b64"], length=64)
        signer = b64_decode(envelope["signer_pubkey_b64"], length=32)
    except CanonicalError as exc:
        raise ManifestError(ManifestFailure.SCHEMA) from exc
    return copy.deepcopy(manifest), signature, signer


def _decode_key(text: str) -> bytes:
    try:
        return b64_decode(text, length=32)
    except CanonicalError as exc:
        raise ManifestError(ManifestFailure.WRONG_OWNER_KEY) from exc


def sign_trust_update(
    previous: Mapping[str, Any],
    owner_key: OwnerKey,
    *,
    mode: str | None = None,
    allowed_composes: Iterable[str] | None = None,
    updated_at: int,
) -> dict[str, Any]:
    """Sign a trust update: the previous manifest with a new ``trust`` block.

    Args:
        previous: the currently accepted (verified) manifest.
        owner_key: the owner's key; must be the manifest's owner key.
        mode: the new trust mode (default: keep the current one).
        allowed_composes: the new compose list (default: keep the current one).
        updated_at: integer Unix seconds; must not precede ``created_at`` or an
            earlier ``updated_at``.

    Returns:
        The new signed envelope.

    Raises:
        ManifestError: the result is invalid or the key is not the owner's.
    """
    manifest = copy.deepcopy(dict(previous))
    trust = manifest.get("trust") or {}
    manifest["trust"] = {
        "mode": mode if mode is not None else trust.get("mode"),
        "allowed_composes": normalise_composes(
            trust.get("allowed_composes", []) if allowed_composes is None else allowed_composes
        ),
    }
    manifest["updated_at"] = updated_at
    _check_update_time(previous, manifest)
    return sign_manifest(manifest, owner_key)


def verify_trust_update(
    previous: Mapping[str, Any], envelope: Any, expected_owner_public_key: str
) -> dict[str, Any]:
    """Verify a trust-update envelope against the manifest it replaces.

    The new manifest must verify like any room envelope, keep the room, the
    tenant and the owner, and differ from ``previous`` only in ``trust`` and
    a later-or-equal ``updated_at``.

    Returns:
        The new verified manifest.

    Raises:
        ManifestError: ``SCHEMA`` if anything but the trust block changed, or
            any failure of :func:`verify_signed_manifest`.
    """
    manifest = verify_signed_manifest(
        envelope,
        expected_owner_public_key,
        expected_room_id=previous.get("room_id"),
        expected_tenant_id=previous.get("tenant_id"),
    )
    if "updated_at" not in manifest:
        raise ManifestError(ManifestFailure.SCHEMA)
    fixed = {k: v for k, v in previous.items() if k not in {"trust", "updated_at"}}
    moved = {k: v for k, v in manifest.items() if k not in {"trust", "updated_at"}}
    if _canonical(fixed) != _canonical(moved):
        raise ManifestError(ManifestFailure.SCHEMA)
    _check_update_time(previous, manifest)
    return manifest


def _check_update_time(previous: Mapping[str, Any], manifest: Mapping[str, Any]) -> None:
    floor = previous.get("updated_at", previous.get("created_at", 0))
    stamp = manifest.get("updated_at")
    if not isinstance(stamp, int) or isinstance(stamp, bool) or stamp < floor:
        raise ManifestError(ManifestFailure.SCHEMA)


def invite_constraints(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The constraint snapshot stored with an invite token (spec section 2.5).

    Empty strings are dropped. Only ``room_id``, ``scope_agent_id``,
    ``can_upload_query_agent`` and the fixed agent ids are meant for
    enforcement; the signed room stays the source of truth.
    """
    m = validate_manifest(copy.deepcopy(dict(manifest)))
    fixed = m["query"]["mode"] == "fixed"
    snapshot: dict[str, Any] = {
        "scope_agent_id": m["scope"]["agent_id"],
        "can_upload_query_agent": not fixed,
        "room_id": m["room_id"],
        "room_manifest_hash": manifest_hash(m),
        "query_mode": m["query"]["mode"],
        "fixed_query_agent_id": m["query"]["agent_id"] if fixed else "",
        "fixed_mediator_agent_id": m["mediator"]["agent_id"],
        "query_inspection_mode": "full" if m["query"]["visibility"] == "inspectable" else "sealed",
        "output_visibility": m["output"]["visibility"],
        "allowed_llm_providers": list(m["egress"]["llm_providers"]),
        "allow_artifacts": m["egress"]["allow_artifacts"],
        "allowed_tables": list(m["allowed_tables"]),
        "policy": m["policy"],
    }
    return {k: v for k, v in snapshot.items() if v != ""}
