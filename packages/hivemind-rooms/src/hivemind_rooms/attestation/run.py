"""Signed run attestations: what ran, on what, with which inputs and output.

Theory of operation: after every run the service signs a body with the run
signer (whose key the quote binds). The body names the room and the manifest
hash the participant accepted, the deployment (compose hash, platform), the
code of each stage (agent id and digest for scope, query and mediator), the
model each stage used, and SHA-256 hashes of the prompt, the output, the
error text and the LLM tape, and the name, SHA-256 and size of every
artifact the run stored (hashed over the plaintext when it was sealed, sorted
by name). A client re-derives every value it can from what
it knows (the question it sent, the answer it received, the room it accepted,
the attestation it verified) and :func:`verify_run_attestation` refuses any
difference, a bad signature, an unexpected signer or a stale timestamp. The
body is canonical JSON (:mod:`hivemind_rooms.canonical`); ``schema`` names
its version (v3 added ``artifacts``). A client that downloads an artifact
checks its bytes with :func:`check_artifact` against the verified body, so a
file the service did not sign, or whose bytes differ, is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, final

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from hivemind_rooms.attestation.run_signer import RunSigner
from hivemind_rooms.canonical import CanonicalError, b64_decode, b64_encode, canonical_json

__all__ = [
    "ROLES",
    "RUN_SCHEMA",
    "AgentPin",
    "RunAttestationError",
    "RunExpectation",
    "artifact_entry",
    "build_run_body",
    "check_artifact",
    "sign_run_attestation",
    "tape_hash",
    "text_hash",
    "verify_run_attestation",
    "verify_run_signature",
]

RUN_SCHEMA = "hivemind.run-attestation.v3"
ROLES = ("scope", "query", "mediator")
_STATUSES = frozenset({"completed", "failed"})
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_ENVELOPE_KEYS = frozenset({"body", "signature_b64", "signer_pubkey_b64"})
_BODY_KEYS = frozenset(
    {
        "schema", "run_id", "status", "timestamp", "platform", "room_id", "manifest_hash",
        "compose_hash", "agents", "models", "prompt_hash", "output_hash", "error_hash",
        "tape_hash", "signer_pubkey_b64", "artifacts",
    }
)  # fmt: skip
_CLOCK_SKEW = 300
_ARTIFACT_KEYS = frozenset({"name", "sha256", "size"})
_MAX_ARTIFACTS = 256


class RunAttestationError(ValueError):
    """A run attestation was refused.

    Attributes:
        field: the body field (or ``"signature"``, ``"signer"``, ``"schema"``)
            that failed.
    """

    def __init__(self, field: str) -> None:
        super().__init__(f"run attestation rejected: {field} mismatch")
        self.field = field


@final
@dataclass(frozen=True)
class AgentPin:
    """One stage's code: its agent id and files digest ("" when absent)."""

    agent_id: str = ""
    digest: str = ""

    def to_dict(self) -> dict[str, str]:
        """JSON form."""
        return {"agent_id": self.agent_id, "digest": self.digest}


def text_hash(text: str) -> str:
    """SHA-256 hex of UTF-8 text (prompt, output, error)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def tape_hash(tape: Sequence[Any]) -> str:
    """SHA-256 hex of an LLM tape (sorted keys, compact, ASCII-escaped JSON).

    The tape may hold floats from provider responses, so it uses plain JSON
    rather than the float-free canonical form; the same bytes come out of the
    same tape on every machine running this code.
    """
    data = json.dumps(list(tape), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(data.encode("ascii")).hexdigest()


def artifact_entry(name: str, content: bytes) -> dict[str, Any]:
    """The attested record of one artifact: ``{"name", "sha256", "size"}`` of its plaintext."""
    return {"name": name, "sha256": hashlib.sha256(content).hexdigest(), "size": len(content)}


def _artifact_list(items: Any) -> list[dict[str, Any]]:
    """Validate and sort artifact records by name.

    Raises:
        ValueError: not a list of well-formed records, or a name repeated.
    """
    if not isinstance(items, (list, tuple)) or len(items) > _MAX_ARTIFACTS:
        raise ValueError("artifacts must be a bounded list")
    out = []
    for item in items:
        if not isinstance(item, Mapping) or set(item) != _ARTIFACT_KEYS:
            raise ValueError("an artifact record is name, sha256, size")
        name, digest, size = item["name"], item["sha256"], item["size"]
        if not isinstance(name, str) or not name or not isinstance(digest, str):
            raise ValueError("an artifact record needs a name and a hash")
        if not _HEX64.fullmatch(digest):
            raise ValueError("artifact hashes are 64 lowercase hex")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError("artifact sizes are non-negative integers")
        out.append({"name": name, "sha256": digest, "size": size})
    out.sort(key=lambda r: r["name"])
    if len({r["name"] for r in out}) != len(out):
        raise ValueError("an artifact name is repeated")
    return out


def check_artifact(body: Mapping[str, Any], name: str, content: bytes) -> None:
    """Check downloaded artifact bytes against a *verified* run body.

    Raises:
        RunAttestationError: ``field == "artifacts"`` when the body does not
            list ``name`` or the size or SHA-256 differ.
    """
    try:
        records = {r["name"]: r for r in _artifact_list(body.get("artifacts"))}
    except ValueError:
        raise RunAttestationError("artifacts") from None
    want = records.get(name)
    if want is None or want["size"] != len(content):
        raise RunAttestationError("artifacts")
    if not hmac.compare_digest(want["sha256"], hashlib.sha256(content).hexdigest()):
        raise RunAttestationError("artifacts")


def build_run_body(
    *,
    run_id: str,
    status: str,
    timestamp: int,
    platform: str,
    room_id: str,
    manifest_hash: str,
    compose_hash: str,
    agents: Mapping[str, AgentPin],
    models: Mapping[str, str],
    prompt: str,
    output: str,
    error: str = "",
    tape_hash: str,
    signer: RunSigner,
    artifacts: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Assemble the body of a run attestation (hashes computed here).

    ``artifacts`` holds one :func:`artifact_entry` per stored artifact; the
    body lists them sorted by name.

    Raises:
        ValueError: unknown status, role, malformed hash or artifact record.
    """
    if status not in _STATUSES:
        raise ValueError("status must be completed or failed")
    if set(agents) - set(ROLES) or set(models) - set(ROLES):
        raise ValueError("agents and models are keyed by scope, query, mediator")
    if not _HEX64.fullmatch(tape_hash) or not _HEX64.fullmatch(manifest_hash):
        raise ValueError("hashes are 64 lowercase hex")
    return {
        "schema": RUN_SCHEMA,
        "run_id": run_id,
        "status": status,
        "timestamp": int(timestamp),
        "platform": platform,
        "room_id": room_id,
        "manifest_hash": manifest_hash,
        "compose_hash": compose_hash,
        "agents": {r: agents.get(r, AgentPin()).to_dict() for r in ROLES},
        "models": {r: str(models.get(r, "")) for r in ROLES},
        "prompt_hash": text_hash(prompt),
        "output_hash": text_hash(output),
        "error_hash": text_hash(error) if error else "",
        "tape_hash": tape_hash,
        "signer_pubkey_b64": signer.public_key_b64(),
        "artifacts": _artifact_list(list(artifacts)),
    }


def sign_run_attestation(body: Mapping[str, Any], signer: RunSigner) -> dict[str, Any]:
    """Sign a run body: ``{"body", "signature_b64", "signer_pubkey_b64"}``."""
    if body.get("signer_pubkey_b64") != signer.public_key_b64():
        raise ValueError("the body names another signer")
    data = canonical_json(dict(body))
    return {
        "body": dict(body),
        "signature_b64": b64_encode(signer.sign(data)),
        "signer_pubkey_b64": signer.public_key_b64(),
    }


@final
@dataclass(frozen=True)
class RunExpectation:
    """What the client knows and the attestation must match.

    Attributes:
        signer_pubkey_b64: the run-signer key bound in the verified quote.
        room_id: the room the client asked.
        manifest_hash: the manifest hash the client accepted.
        compose_hash: the compose hash from the *verified* quote.
        platform: the platform of the verified attestation.
        agents: the agent pins the client inspected, per role.
        models: the models the client expects, per role.
        prompt: the exact question sent.
        output: the exact output received.
        now: current Unix seconds.
        run_id: the run id the service returned, if known.
        status: the status the client expects (``completed`` by default).
        error: the error text received, for failed runs.
        tape_hash: the tape hash, if the client has the tape.
        artifacts: the artifact records the client expects, if it knows them
            (the list is always checked for shape; downloads are checked
            with :func:`check_artifact`).
        max_age_seconds: how old the timestamp may be.
    """

    signer_pubkey_b64: str
    room_id: str
    manifest_hash: str
    compose_hash: str
    platform: str
    agents: Mapping[str, AgentPin]
    models: Mapping[str, str]
    prompt: str = field(repr=False)
    output: str = field(repr=False)
    now: int
    run_id: str | None = None
    status: str = "completed"
    error: str = field(default="", repr=False)
    tape_hash: str | None = None
    artifacts: Sequence[Mapping[str, Any]] | None = None
    max_age_seconds: int = 24 * 3600


def _split(att: Any) -> tuple[dict[str, Any], bytes, str]:
    if not isinstance(att, dict) or set(att) != _ENVELOPE_KEYS:
        raise RunAttestationError("schema")
    body = att["body"]
    if not isinstance(body, dict) or set(body) != _BODY_KEYS or body["schema"] != RUN_SCHEMA:
        raise RunAttestationError("schema")
    try:
        signature = b64_decode(att["signature_b64"], length=64)
    except CanonicalError as exc:
        raise RunAttestationError("signature") from exc
    return body, signature, att["signer_pubkey_b64"]


def _expected_fields(e: RunExpectation) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "status": e.status,
        "platform": e.platform,
        "room_id": e.room_id,
        "manifest_hash": e.manifest_hash,
        "compose_hash": e.compose_hash,
        "agents": {r: e.agents.get(r, AgentPin()).to_dict() for r in ROLES},
        "models": {r: str(e.models.get(r, "")) for r in ROLES},
        "prompt_hash": text_hash(e.prompt),
        "output_hash": text_hash(e.output),
        "error_hash": text_hash(e.error) if e.error else "",
        "signer_pubkey_b64": e.signer_pubkey_b64,
    }
    if e.run_id is not None:
        fields["run_id"] = e.run_id
    if e.tape_hash is not None:
        fields["tape_hash"] = e.tape_hash
    if e.artifacts is not None:
        fields["artifacts"] = _artifact_list(list(e.artifacts))
    return fields


def verify_run_signature(att: Any, *, signer_pubkey_b64: str) -> dict[str, Any]:
    """Check only who signed a run attestation: shape, signer and signature.

    For a client that holds the attested run-signer key but not the question
    (it cannot build a :class:`RunExpectation`), e.g. to check artifact
    downloads against the signed artifact records.

    Returns:
        The body, signed by ``signer_pubkey_b64``.

    Raises:
        RunAttestationError: ``schema``, ``signer`` or ``signature``.
    """
    body, signature, signer = _split(att)
    _check_signed(body, signature, signer, signer_pubkey_b64)
    if body["signer_pubkey_b64"] != signer_pubkey_b64:
        raise RunAttestationError("signer_pubkey_b64")
    return body


def _check_signed(body: dict[str, Any], signature: bytes, signer: str, expected: str) -> None:
    if signer != expected:
        raise RunAttestationError("signer")
    try:
        key = VerifyKey(b64_decode(signer, length=32))
        key.verify(canonical_json(body), signature)
    except (BadSignatureError, CanonicalError, ValueError) as exc:
        raise RunAttestationError("signature") from exc


def verify_run_attestation(att: Any, *, expected: RunExpectation) -> dict[str, Any]:
    """Verify a signed run attestation against everything the client knows.

    Order: shape; envelope signer equals the attested signer key; Ed25519
    signature over the canonical body; every expected field; the timestamp
    is within ``max_age_seconds`` (and not more than 5 minutes ahead).

    Returns:
        The verified body.

    Raises:
        RunAttestationError: ``exc.field`` names the first failing check.
    """
    body, signature, signer = _split(att)
    _check_signed(body, signature, signer, expected.signer_pubkey_b64)
    for name, value in _expected_fields(expected).items():
        if canonical_json(body[name]) != canonical_json(value):
            raise RunAttestationError(name)
    if not isinstance(body["tape_hash"], str) or not _HEX64.fullmatch(body["tape_hash"]):
        raise RunAttestationError("tape_hash")
    try:
        if _artifact_list(body["artifacts"]) != body["artifacts"]:
            raise RunAttestationError("artifacts")  # unsorted or not in normal form
    except ValueError:
        raise RunAttestationError("artifacts") from None
    stamp = body["timestamp"]
    if not isinstance(stamp, int) or isinstance(stamp, bool):
        raise RunAttestationError("timestamp")
    if not expected.now - expected.max_age_seconds <= stamp <= expected.now + _CLOCK_SKEW:
        raise RunAttestationError("timestamp")
    return body
