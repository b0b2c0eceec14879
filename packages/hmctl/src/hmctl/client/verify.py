"""The participant's verification flow: service, room, acceptance, run.

Theory of operation: nothing about a question leaves the client until three
checks pass, in this order (fail closed; each failure raises and stops):

1. **The service.** A fresh random nonce goes to ``GET /v1/attestation``; the
   document must verify (:func:`hivemind_rooms.attestation.verify_service_attestation`)
   against the user's dev roots or DCAP, and must answer that nonce. Dev
   attestations from a service that is not on loopback are refused unless
   the user allowed them. The verified compose hash is then checked against
   the local trust store: same hash as approved -> proceed; first sight or a
   changed hash -> the user must approve (``-y``, ``HIVEMIND_TRUST_HASH`` or
   an interactive yes).
2. **The room.** The signed envelope from ``GET /v1/rooms/{id}/attest`` must
   verify against the owner key *from the invite link* (for the owner's own
   rooms: the owner key kept locally) and name the room asked for; strict
   room trust modes must list the *verified* compose hash.
3. **Acceptance.** The manifest hash must have been accepted for this
   profile (``room accept``), or is accepted now after showing its summary.

After a run, the signed run attestation must be signed by the run-signer
key bound in the verified quote and match every value the client knows:
room, manifest hash, compose hash, platform, each stage's agent and digest,
the hash of the prompt it sent, of the output it received and the run id.

No credential goes to a service before step 1 passed: a :class:`ServiceGate`
checks the service (the attestation request itself carries no key) and only
then may a caller send an ``hmk_``, an admin key or a room token. The gate
remembers the outcome per service URL for its own lifetime (one CLI
invocation) and re-verifies when the trust store no longer approves the
compose hash it saw, so one command does not fetch a fresh quote per request.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, final

from hivemind_rooms.attestation import (
    AgentPin,
    AttestationRefused,
    AttestationUnavailable,
    RunAttestationError,
    RunExpectation,
    ServiceAttestation,
    VerificationPolicy,
    is_loopback_url,
    verify_run_attestation,
    verify_service_attestation,
)
from hivemind_rooms.attestation.run import ROLES
from hivemind_rooms.manifest import ManifestError, verify_signed_manifest

from .api import RoomApi
from .errors import (
    AttestationInvalid,
    NetworkFailure,
    RoomClientError,
    ServiceError,
    TrustRefused,
)
from .state import LocalState, acceptance_key

__all__ = [
    "ServiceGate",
    "TrustOptions",
    "VerifiedRoom",
    "VerifiedService",
    "manifest_summary",
    "verify_room",
    "verify_run",
    "verify_service",
]

_BUSY_RETRIES = 3


@final
@dataclass(frozen=True)
class TrustOptions:
    """How the client decides when verification needs a person.

    Attributes:
        skip_attestations: skip service attestation and the acceptance gate
            (the room signature is still checked).
        allow_dev: accept dev attestations from non-loopback services.
        assume_yes: approve a new or changed compose hash without asking.
        trust_hash: approve exactly this compose hash (and nothing else).
        confirm: asks the user a yes/no question; None refuses.
        notify: shows a one-line notice.
        sleep: waits between retries (tests may shorten it).
    """

    skip_attestations: bool = False
    allow_dev: bool = False
    assume_yes: bool = False
    trust_hash: str = ""
    confirm: Callable[[str], bool] | None = field(default=None, repr=False)
    notify: Callable[[str], None] = field(default=lambda text: None, repr=False)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)


@final
@dataclass(frozen=True)
class VerifiedService:
    """The outcome of the service check.

    Attributes:
        service: the service base URL.
        attestation: the verified attestation (None when skipped).
        decision: ``trusted``, ``tofu`` (approved now), ``changed`` (re-approved
            now) or ``skipped``.
        document: the attestation document that verified (it answered the
            client's nonce); None when skipped.
    """

    service: str
    attestation: ServiceAttestation | None
    decision: str
    document: Mapping[str, Any] | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        """``attested``, ``unattested`` or ``unverified`` (skipped)."""
        return self.attestation.label if self.attestation else "unverified"


@final
@dataclass(frozen=True)
class VerifiedRoom:
    """A room whose signed manifest verified.

    Attributes:
        room_id: the room id.
        service: the verified service.
        manifest: the verified manifest.
        manifest_hash: its hash.
        owner_pubkey_b64: the owner key it verified against.
        agents: per role, the agent attestation view the service returned.
        revoked: whether the room is revoked.
    """

    room_id: str
    service: VerifiedService
    manifest: dict[str, Any]
    manifest_hash: str
    owner_pubkey_b64: str
    agents: Mapping[str, dict[str, Any] | None]
    revoked: bool = False

    def acceptance_key(self, profile: str) -> str:
        """The acceptance-store key of this manifest for ``profile``."""
        return acceptance_key(
            profile, self.service.service, self.room_id, self.owner_pubkey_b64, self.manifest_hash
        )

    def acceptance_record(self, profile: str) -> dict[str, Any]:
        """What ``room accept`` stores."""
        return {
            "profile": profile,
            "service": self.service.service,
            "room_id": self.room_id,
            "name": self.manifest.get("name", ""),
            "manifest_hash": self.manifest_hash,
            "owner_pubkey_b64": self.owner_pubkey_b64,
        }


def _fetch_attestation(api: RoomApi, nonce: bytes, opts: TrustOptions) -> dict[str, Any]:
    for attempt in range(_BUSY_RETRIES + 1):
        try:
            return api.attestation(nonce)
        except ServiceError as exc:
            if exc.status != 429 or attempt == _BUSY_RETRIES:
                raise
            opts.sleep(2.0 * (attempt + 1))
    raise AssertionError("unreachable")


def _decide(
    state: LocalState, service: str, verified: ServiceAttestation, opts: TrustOptions
) -> str:
    record = state.trusted_service(service) or {}
    approved = record.get("approved_compose_hash")
    compose = verified.compose_hash
    if approved == compose:
        return "trusted"
    decision = "changed" if approved else "tofu"
    if opts.trust_hash:
        if opts.trust_hash.strip().lower() != compose:
            raise TrustRefused(
                f"{service} runs compose hash {compose}, not the one HIVEMIND_TRUST_HASH names"
            )
    elif not opts.assume_yes:
        question = (
            f"{service} now runs compose hash {compose} (approved before: {approved}). Trust it?"
            if approved
            else f"First use of {service}: compose hash {compose} "
            f"({verified.label}, {verified.platform}). Trust it?"
        )
        if opts.confirm is None or not opts.confirm(question):
            raise TrustRefused(
                f"compose hash {compose} of {service} is not approved",
                hint="approve it interactively, with -y, or with HIVEMIND_TRUST_HASH",
            )
    state.approve_service(
        service, compose_hash=compose, app_id=verified.app_id, platform=verified.platform
    )
    opts.notify(f"approved compose hash {compose} for {service}")
    return decision


def verify_service(api: RoomApi, state: LocalState, opts: TrustOptions) -> VerifiedService:
    """Verify the live service attestation with a fresh nonce (step 1).

    Raises:
        TrustRefused: not ready, dev refused by policy, no dev root, hash not approved.
        AttestationInvalid: the document failed verification.
        NetworkFailure: the service could not be reached.
    """
    service = api.service
    if opts.skip_attestations:
        opts.notify("WARNING: attestation checks skipped (--dangerously-skip-attestations)")
        return VerifiedService(service, None, "skipped")
    nonce = secrets.token_bytes(32)
    bundle = _fetch_attestation(api, nonce, opts)
    if not isinstance(bundle, dict) or bundle.get("ready") is not True:
        reason = bundle.get("reason", "") if isinstance(bundle, dict) else ""
        raise TrustRefused(f"{service} cannot attest itself: {reason or 'not ready'}")
    doc = bundle.get("attestation")
    platform = doc.get("platform") if isinstance(doc, dict) else None
    if platform == "dev" and not opts.allow_dev and not is_loopback_url(service):
        raise TrustRefused(
            f"{service} offers only a development attestation and is not on this machine",
            hint="pass --allow-dev-attestation to proceed UNATTESTED (dev)",
        )
    roots = frozenset(state.dev_roots())
    if platform == "dev" and not roots:
        raise TrustRefused(
            "no trusted dev attestation root",
            hint="add the service's dev root with: hmctl trust dev-root add KEY "
            "(or --data-dir DIR for a local service)",
        )
    policy = VerificationPolicy(allow_dev=opts.allow_dev, dev_roots=roots)
    try:
        verified = verify_service_attestation(doc, service_url=service, nonce=nonce, policy=policy)
    except AttestationUnavailable as exc:
        raise NetworkFailure(f"cannot verify the attestation: {exc}") from None
    except AttestationRefused as exc:
        raise AttestationInvalid(f"service attestation rejected: {exc}") from None
    decision = _decide(state, service, verified, opts)
    return VerifiedService(service, verified, decision, document=doc)


def _gate_hint(exc: RoomClientError, url: str) -> str:
    """What to do when the gate refused: the check's own hint, then how to trust."""
    if isinstance(exc, NetworkFailure):
        return exc.hint
    attest = f"hmctl -y trust attest --service {url}"
    if "trust dev-root add" in exc.hint:
        return f"{exc.hint}; then approve its compose hash: {attest}"
    if "HIVEMIND_TRUST_HASH" in exc.hint:
        return f"{exc.hint}; or check and approve it first: {attest}"
    first = f"{exc.hint}; " if exc.hint else ""
    return (
        f"{first}trust the service first: hmctl trust dev-root add KEY (or --data-dir DIR) "
        f"for a development service, then {attest}"
    )


@final
class ServiceGate:
    """Verifies a service before any credential is sent to it.

    Args:
        state: the local state (trust store, dev roots).
        opts: trust options (the dev-root model and approval rules of step 1).
        transport: an httpx transport for the attestation requests (tests).

    ``check(url)`` runs step 1 with a fresh nonce over a connection that
    carries no key, and returns the :class:`VerifiedService`; later checks of
    the same URL reuse it while the trust store still approves its compose
    hash (and still trusts a dev root, for a dev attestation).
    """

    def __init__(self, state: LocalState, opts: TrustOptions, *, transport: Any = None) -> None:
        self._state = state
        self._opts = opts
        self._transport = transport
        self._seen: dict[str, VerifiedService] = {}

    def _still_trusted(self, verified: VerifiedService) -> bool:
        att = verified.attestation
        if att is None:
            return self._opts.skip_attestations
        record = self._state.trusted_service(verified.service) or {}
        if record.get("approved_compose_hash") != att.compose_hash:
            return False
        return att.platform != "dev" or bool(self._state.dev_roots())

    def check(self, service: str) -> VerifiedService:
        """Verify ``service`` (or reuse this gate's earlier outcome for it).

        Raises:
            TrustRefused: refused by the trust policy (exit code 9 in the CLI).
            AttestationInvalid: the attestation did not verify (exit code 11).
            NetworkFailure: the service could not be reached or checked.
        """
        url = service.rstrip("/")
        known = self._seen.get(url)
        if known is not None and self._still_trusted(known):
            return known
        try:
            with RoomApi(url, transport=self._transport) as api:
                verified = verify_service(api, self._state, self._opts)
        except (TrustRefused, AttestationInvalid, NetworkFailure) as exc:
            raise type(exc)(
                f"{exc.message} (no key was sent to {url})", hint=_gate_hint(exc, url)
            ) from None
        self._seen[url] = verified
        return verified


def verify_room(
    api: RoomApi,
    state: LocalState,
    opts: TrustOptions,
    *,
    room_id: str,
    owner_pubkey_b64: str,
    service: VerifiedService | None = None,
) -> VerifiedRoom:
    """Verify the service, then the room's signed manifest and room trust (steps 1-2).

    Args:
        api: a client holding the credential that reaches the room.
        state: the local state (trust store, dev roots).
        opts: trust options.
        room_id: the room asked for.
        owner_pubkey_b64: the owner key from the invite link (or the owner's own key).
        service: the outcome of step 1 for ``api.service`` when the caller already
            has it (e.g. from a :class:`ServiceGate`); None verifies it now.

    Raises:
        AttestationInvalid: the envelope does not verify or names another room.
        TrustRefused: the room's trust mode does not admit the live compose hash.
    """
    if service is None or service.service != api.service:
        service = verify_service(api, state, opts)
    response = api.room_attest(room_id)
    room = response.get("room") if isinstance(response, dict) else None
    envelope = room.get("envelope") if isinstance(room, dict) else None
    try:
        manifest = verify_signed_manifest(envelope, owner_pubkey_b64, expected_room_id=room_id)
    except ManifestError as exc:
        raise AttestationInvalid(
            f"room {room_id} failed verification: {exc}",
            hint="do not use this room; ask its owner for a fresh invite link",
        ) from None
    assert isinstance(envelope, dict)
    assert isinstance(room, dict)
    trust = manifest["trust"]
    if trust["mode"] != "operator_updates" and service.attestation is not None:
        compose = service.attestation.compose_hash
        if compose not in trust["allowed_composes"]:
            raise TrustRefused(
                f"room {room_id} ({trust['mode']}) does not allow the live compose hash {compose}",
                hint="the owner can approve it with: hmctl room trust ROOM --approve-live",
            )
    agents = {role: response.get(f"{role}_agent") for role in ROLES}
    return VerifiedRoom(
        room_id=room_id,
        service=service,
        manifest=manifest,
        manifest_hash=str(envelope["manifest_hash"]),
        owner_pubkey_b64=owner_pubkey_b64,
        agents=agents,
        revoked=room.get("revoked_at") is not None,
    )


def manifest_summary(room: VerifiedRoom) -> list[tuple[str, str]]:
    """The facts a participant accepts, as (label, value) rows."""
    m = room.manifest
    query = m["query"]
    mediator = m["mediator"]
    providers = ", ".join(m["egress"]["llm_providers"]) or "none (no LLM egress)"
    return [
        ("Room", room.room_id),
        ("Name", m["name"] or "-"),
        ("Manifest hash", room.manifest_hash),
        ("Owner key", room.owner_pubkey_b64),
        ("Scope agent", f"{m['scope']['agent_id']} ({m['scope']['visibility']})"),
        (
            "Query agent",
            f"{query['agent_id']} ({query['visibility']})"
            if query["mode"] == "fixed"
            else f"uploadable ({query['visibility']})",
        ),
        (
            "Mediator",
            f"{mediator['agent_id']} ({mediator.get('visibility', '')})"
            if mediator["agent_id"]
            else "none",
        ),
        ("Output visibility", m["output"]["visibility"]),
        ("LLM providers", providers),
        ("Artifacts", "allowed" if m["egress"]["allow_artifacts"] else "not allowed"),
        ("Allowed tables", ", ".join(m["allowed_tables"]) or "none"),
        ("Trust mode", m["trust"]["mode"]),
        ("Service", f"{room.service.service} ({room.service.label})"),
        ("Signature", "verified against the owner key"),
    ]


def _pin(view: Mapping[str, Any] | None, claimed: Mapping[str, Any]) -> AgentPin:
    """The pin we expect for a stage: the inspected agent and one of its digests."""
    if not view:
        return AgentPin()
    digests = {view.get("files_digest_sha256", ""), view.get("attested_files_digest_sha256", "")}
    digests.discard("")
    digest = claimed.get("digest", "")
    if digest not in digests:
        digest = view.get("files_digest_sha256", "")
    return AgentPin(agent_id=str(view.get("agent_id", "")), digest=str(digest))


def verify_run(
    run: Mapping[str, Any],
    *,
    room: VerifiedRoom,
    prompt: str,
    query_agent: Mapping[str, Any] | None = None,
    pinned_models: Mapping[str, str] | None = None,
    now: int | None = None,
) -> dict[str, Any] | None:
    """Verify a finished run's signed attestation against what the client knows.

    Args:
        run: the run object (``GET /v1/runs/{id}``).
        room: the verified room the question went to.
        prompt: the exact question sent.
        query_agent: the attestation view of an uploaded query agent, if any.
        pinned_models: models the user asked for, per role (others are reported).
        now: current Unix seconds.

    Returns:
        The verified body, or None when attestation checks were skipped.

    Raises:
        AttestationInvalid: missing attestation or any mismatch.
    """
    verified = room.service.attestation
    if verified is None:
        return None
    att = run.get("attestation")
    body = att.get("body") if isinstance(att, dict) else None
    if not isinstance(body, dict):
        raise AttestationInvalid(f"run {run.get('run_id')} carries no signed attestation")
    claimed_agents = body.get("agents") if isinstance(body.get("agents"), dict) else {}
    views = dict(room.agents)
    if query_agent is not None:
        views["query"] = dict(query_agent)
    agents = {role: _pin(views.get(role), claimed_agents.get(role) or {}) for role in ROLES}
    claimed_models = body.get("models") if isinstance(body.get("models"), dict) else {}
    models = {r: str(claimed_models.get(r, "")) for r in ROLES}
    models.update({r: v for r, v in (pinned_models or {}).items() if v})
    expected = RunExpectation(
        signer_pubkey_b64=verified.run_signer_pubkey_b64,
        room_id=room.room_id,
        manifest_hash=room.manifest_hash,
        compose_hash=verified.compose_hash,
        platform=verified.platform,
        agents=agents,
        models=models,
        prompt=prompt,
        output=str(run.get("output") or ""),
        now=int(time.time()) if now is None else now,
        run_id=str(run.get("run_id", "")),
        status=str(run.get("status", "")),
        error=str(run.get("error") or ""),
    )
    try:
        return verify_run_attestation(att, expected=expected)
    except RunAttestationError as exc:
        raise AttestationInvalid(
            f"run attestation invalid: {exc.field} does not match",
            hint="do not trust this answer",
        ) from None
