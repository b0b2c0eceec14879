"""Strict validation of the ``hivemind.room.v1`` manifest layout.

Every key of the manifest is checked for presence, type and format; unknown
keys are refused so that nothing unsigned-by-intent can ride along. Failures
raise :class:`ManifestError` with the ``SCHEMA`` class and no detail about
which field failed (the caller only learns "bad schema").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import Enum
from typing import Any

from hivemind_rooms.canonical import CanonicalError, b64_decode, sha256_hex

__all__ = [
    "KNOWN_LLM_PROVIDERS",
    "SCHEMA",
    "ManifestError",
    "ManifestFailure",
    "check_room_trust",
    "normalise_composes",
    "normalise_providers",
    "normalise_tables",
    "validate_manifest",
]

SCHEMA = "hivemind.room.v1"
KNOWN_LLM_PROVIDERS = frozenset({"openrouter", "tinfoil"})
VISIBILITIES = frozenset({"inspectable", "sealed"})
QUERY_MODES = frozenset({"fixed", "uploadable"})
OUTPUT_VISIBILITIES = frozenset({"querier_only", "owner_and_querier"})
TRUST_MODES = frozenset({"operator_updates", "pinned", "owner_approved"})
STRICT_TRUST_MODES = frozenset({"pinned", "owner_approved"})

_REQUIRED = frozenset(
    {
        "schema",
        "room_id",
        "tenant_id",
        "name",
        "rules",
        "rules_hash",
        "policy",
        "scope",
        "query",
        "mediator",
        "output",
        "egress",
        "trust",
        "allowed_tables",
        "created_at",
        "owner_pubkey_b64",
    }
)
_OPTIONAL = frozenset({"updated_at"})
_ROOM_ID = re.compile(r"^room_[0-9a-f]{12}$")
_TENANT_ID = re.compile(r"^t_[0-9a-f]{12}$")
_AGENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_TABLE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]{0,62}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_MAX_TEXT = 256 * 1024
_MAX_LIST = 256


class ManifestFailure(Enum):
    """Why a manifest or envelope was refused; the value is the message."""

    SCHEMA = "room manifest rejected: bad schema"
    HASH_MISMATCH = "room manifest rejected: hash mismatch"
    BAD_SIGNATURE = "room manifest rejected: bad signature"
    WRONG_OWNER_KEY = "room manifest rejected: not signed by the expected owner key"
    WRONG_ROOM = "room manifest rejected: it describes a different room"
    UNTRUSTED_DEPLOYMENT = "room trust policy does not allow the attested deployment"


class ManifestError(ValueError):
    """A manifest or signed envelope failed validation or verification.

    Attributes:
        failure: the failure class.
    """

    def __init__(self, failure: ManifestFailure) -> None:
        super().__init__(failure.value)
        self.failure = failure


def _fail() -> ManifestError:
    return ManifestError(ManifestFailure.SCHEMA)


def normalise_providers(providers: Iterable[str]) -> list[str]:
    """Lowercase, strip and deduplicate LLM provider names, keeping order."""
    out: list[str] = []
    for p in providers:
        if not isinstance(p, str):
            raise _fail()
        name = p.strip().lower()
        if name not in out:
            out.append(name)
    return out


def normalise_composes(hashes: Iterable[str]) -> list[str]:
    """Strip, lowercase and deduplicate compose hashes, keeping order."""
    out: list[str] = []
    for h in hashes:
        if not isinstance(h, str):
            raise _fail()
        value = h.strip().lower()
        if value not in out:
            out.append(value)
    return out


def normalise_tables(tables: Iterable[str]) -> list[str]:
    """Deduplicate table names case-insensitively, keeping the first spelling."""
    out: list[str] = []
    seen: set[str] = set()
    for t in tables:
        if not isinstance(t, str):
            raise _fail()
        if t.lower() not in seen:
            seen.add(t.lower())
            out.append(t)
    return out


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _text(value: Any) -> bool:
    if not isinstance(value, str) or len(value) > _MAX_TEXT:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_keys(obj: Any, required: set[str], optional: frozenset[str] = frozenset()) -> None:
    if not isinstance(obj, dict) or not required <= set(obj) <= required | optional:
        raise _fail()


def _check_agents(m: dict[str, Any]) -> None:
    scope, query, mediator = m["scope"], m["query"], m["mediator"]
    _check_keys(scope, {"agent_id", "visibility"})
    if not isinstance(scope["agent_id"], str) or not _AGENT_ID.fullmatch(scope["agent_id"]):
        raise _fail()
    if scope["visibility"] not in VISIBILITIES:
        raise _fail()
    _check_keys(query, {"mode", "agent_id", "visibility"})
    if query["mode"] not in QUERY_MODES or query["visibility"] not in VISIBILITIES:
        raise _fail()
    qid = query["agent_id"]
    fixed_ok = isinstance(qid, str) and _AGENT_ID.fullmatch(qid) is not None
    if (query["mode"] == "fixed" and not fixed_ok) or (query["mode"] == "uploadable" and qid != ""):
        raise _fail()
    _check_keys(mediator, {"agent_id"}, frozenset({"visibility"}))
    mid = mediator["agent_id"]
    if mid == "":
        ok = "visibility" not in mediator
    else:
        ok = isinstance(mid, str) and _AGENT_ID.fullmatch(mid) is not None
        ok = ok and mediator.get("visibility") in VISIBILITIES
    if not ok:
        raise _fail()


def _check_policy_blocks(m: dict[str, Any]) -> None:
    _check_keys(m["output"], {"visibility"})
    if m["output"]["visibility"] not in OUTPUT_VISIBILITIES:
        raise _fail()
    egress = m["egress"]
    _check_keys(egress, {"llm_providers", "allow_artifacts"})
    providers = egress["llm_providers"]
    if not isinstance(providers, list) or not isinstance(egress["allow_artifacts"], bool):
        raise _fail()
    if any(p not in KNOWN_LLM_PROVIDERS for p in providers) or len(set(providers)) != len(
        providers
    ):
        raise _fail()
    trust = m["trust"]
    _check_keys(trust, {"mode", "allowed_composes"})
    composes = trust["allowed_composes"]
    if trust["mode"] not in TRUST_MODES or not isinstance(composes, list):
        raise _fail()
    if len(composes) > _MAX_LIST or len(set(composes)) != len(composes):
        raise _fail()
    if any(not isinstance(h, str) or not _HEX64.fullmatch(h) for h in composes):
        raise _fail()
    if trust["mode"] in STRICT_TRUST_MODES and not composes:
        raise _fail()


def _check_tables(tables: Any) -> None:
    if not isinstance(tables, list) or len(tables) > _MAX_LIST:
        raise _fail()
    seen: set[str] = set()
    for t in tables:
        if not isinstance(t, str) or not _TABLE.fullmatch(t) or t.lower() in seen:
            raise _fail()
        seen.add(t.lower())


def validate_manifest(manifest: Any) -> dict[str, Any]:
    """Check every field of a ``hivemind.room.v1`` manifest.

    Args:
        manifest: the decoded manifest (untrusted).

    Returns:
        The same dict, unchanged.

    Raises:
        ManifestError: (``SCHEMA``) on any missing, unknown or invalid field.
    """
    _check_keys(manifest, set(_REQUIRED), _OPTIONAL)
    m: dict[str, Any] = manifest
    if m["schema"] != SCHEMA:
        raise _fail()
    if not isinstance(m["room_id"], str) or not _ROOM_ID.fullmatch(m["room_id"]):
        raise _fail()
    if not isinstance(m["tenant_id"], str) or not _TENANT_ID.fullmatch(m["tenant_id"]):
        raise _fail()
    if not all(_text(m[k]) for k in ("name", "rules", "policy")) or m["name"] != m["name"].strip():
        raise _fail()
    if m["rules_hash"] != sha256_hex(m["rules"].encode("utf-8", "surrogatepass")):
        raise _fail()
    _check_agents(m)
    _check_policy_blocks(m)
    _check_tables(m["allowed_tables"])
    if not _is_int(m["created_at"]):
        raise _fail()
    if "updated_at" in m and (not _is_int(m["updated_at"]) or m["updated_at"] < m["created_at"]):
        raise _fail()
    try:
        b64_decode(m["owner_pubkey_b64"], length=32)
    except CanonicalError as exc:
        raise _fail() from exc
    return m


def check_room_trust(manifest: Any, verified_compose_hash: str) -> None:
    """Enforce a room's trust policy against the *verified* compose hash.

    ``operator_updates`` accepts any deployment the client's attestation
    check accepted; ``pinned`` and ``owner_approved`` require the compose hash
    from the verified quote (never the service's own claim) to be listed.

    Raises:
        ManifestError: ``UNTRUSTED_DEPLOYMENT`` when the hash is not allowed
            (or is empty), ``SCHEMA`` when the manifest is invalid.
    """
    m = validate_manifest(manifest)
    trust = m["trust"]
    if trust["mode"] not in STRICT_TRUST_MODES:
        return
    if not verified_compose_hash or verified_compose_hash.lower() not in trust["allowed_composes"]:
        raise ManifestError(ManifestFailure.UNTRUSTED_DEPLOYMENT)
