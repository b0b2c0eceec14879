"""Owner-side room operations: agents, signed creation, trust updates; room references.

Rooms are signed on the owner's machine: :func:`create_room` builds the
``hivemind.room.v1`` manifest (room id drawn here, tenant id from
``/v1/whoami``), signs it with the owner's key and registers the envelope.
The service keeps the public key only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, final
from urllib.parse import urlsplit

from hivemind_rooms.credentials import new_room_id
from hivemind_rooms.links import LinkError, RoomLink
from hivemind_rooms.manifest import ManifestError, OwnerKey, build_manifest, sign_manifest
from hivemind_rooms.manifest import sign_trust_update as _sign_trust_update

from .api import RoomApi, pack_agent
from .errors import UsageProblem
from .state import LocalState, Profile

__all__ = [
    "AgentRef",
    "RoomSpec",
    "RoomTarget",
    "create_room",
    "resolve_target",
    "same_service",
    "sign_trust_update",
    "upload_agent",
]

_MODE_OF = {"inspectable": "full", "sealed": "sealed"}
_VISIBILITY_OF = {"full": "inspectable", "sealed": "sealed"}


@final
@dataclass(frozen=True)
class AgentRef:
    """An agent given as an id or as a local directory / ``.tar.gz`` to upload."""

    value: str

    @property
    def is_path(self) -> bool:
        """Whether the reference names a local path."""
        return Path(self.value).exists()


def upload_agent(
    api: RoomApi,
    path: Path,
    *,
    agent_type: str,
    visibility: str,
    name: str | None = None,
    private_paths: Sequence[str] = (),
    timeout_seconds: int | None = None,
    memory_mb: int | None = None,
) -> str:
    """Upload an agent directory or archive; return its agent id."""
    data = {
        "name": name or path.name.removesuffix(".tar.gz") or agent_type,
        "agent_type": agent_type,
        "inspection_mode": _MODE_OF[visibility],
        "private_paths": json.dumps(list(private_paths)),
    }
    if timeout_seconds is not None:
        data["timeout_seconds"] = str(timeout_seconds)
    if memory_mb is not None:
        data["memory_mb"] = str(memory_mb)
    files = {"archive": ("agent.tar.gz", pack_agent(path), "application/gzip")}
    result = api.request("POST", "/v1/room-agents", data=data, files=files)
    return str(result["agent_id"])


@final
@dataclass(frozen=True)
class RoomSpec:
    """What the owner asks for (the options of ``room create``)."""

    scope: str
    name: str = ""
    rules: str = ""
    policy: str | None = None
    scope_visibility: str | None = None
    query_agent: str | None = None
    query_visibility: str | None = None
    mediator_agent: str | None = None
    mediator_visibility: str | None = None
    output_visibility: str = "querier_only"
    llm_providers: Sequence[str] = ("openrouter",)
    allow_artifacts: bool = True
    trust_mode: str = "operator_updates"
    allowed_composes: Sequence[str] = ()
    allowed_tables: Sequence[str] = ()
    agent_timeout: int | None = None
    private_paths: dict[str, Sequence[str]] = field(default_factory=dict)


def _resolve_agent(
    api: RoomApi, spec: RoomSpec, role: str, ref: str, visibility: str | None
) -> tuple[str, str]:
    """Return (agent_id, visibility), uploading a local agent when ``ref`` is a path."""
    if AgentRef(ref).is_path:
        chosen = visibility or ("sealed" if role == "query" else "inspectable")
        agent_id = upload_agent(
            api,
            Path(ref),
            agent_type=role,
            visibility=chosen,
            private_paths=spec.private_paths.get(role, ()),
            timeout_seconds=spec.agent_timeout,
        )
        return agent_id, chosen
    config = api.get(f"/v1/room-agents/{ref}")
    registered = _VISIBILITY_OF.get(str(config.get("inspection_mode")), "sealed")
    if visibility is not None and visibility != registered:
        raise UsageProblem(
            f"{role} agent {ref} is registered as {registered}, not {visibility}",
            hint=f"drop --{role}-visibility or pass {registered}",
        )
    return str(config["agent_id"]), registered


def create_room(
    api: RoomApi,
    owner_key: OwnerKey,
    spec: RoomSpec,
    *,
    live_compose_hash: str | None = None,
) -> dict[str, Any]:
    """Upload local agents, sign the manifest and register the room.

    Args:
        api: a client holding the owner's ``hmk_`` key.
        owner_key: the owner's signing key.
        spec: the room options.
        live_compose_hash: the verified live compose hash, used to fill an
            ``owner_approved`` room's empty allowlist.

    Returns:
        The service's answer: ``{room_id, room, token, token_id, link}``.

    Raises:
        UsageProblem: inconsistent options (e.g. a strict mode without hashes).
    """
    composes = list(spec.allowed_composes)
    if spec.trust_mode != "operator_updates" and not composes:
        if spec.trust_mode == "owner_approved" and live_compose_hash:
            composes = [live_compose_hash]
        else:
            raise UsageProblem(
                f"trust mode {spec.trust_mode} needs at least one compose hash",
                hint="pass --allowed-compose HASH",
            )
    tenant_id = str(api.get("/v1/whoami")["tenant_id"])
    scope_id, scope_vis = _resolve_agent(api, spec, "scope", spec.scope, spec.scope_visibility)
    query_fields: dict[str, Any] = {"query_mode": "uploadable"}
    if spec.query_agent:
        query_id, query_vis = _resolve_agent(
            api, spec, "query", spec.query_agent, spec.query_visibility
        )
        query_fields = {
            "query_mode": "fixed",
            "query_agent_id": query_id,
            "query_visibility": query_vis,
        }
    elif spec.query_visibility:
        query_fields["query_visibility"] = spec.query_visibility
    mediator_fields: dict[str, Any] = {}
    if spec.mediator_agent:
        mediator_id, mediator_vis = _resolve_agent(
            api, spec, "mediator", spec.mediator_agent, spec.mediator_visibility
        )
        mediator_fields = {"mediator_agent_id": mediator_id, "mediator_visibility": mediator_vis}
    try:
        manifest = build_manifest(
            room_id=new_room_id(),
            tenant_id=tenant_id,
            owner_pubkey_b64=owner_key.public_key_b64(),
            scope_agent_id=scope_id,
            created_at=int(time.time()),
            name=spec.name,
            rules=spec.rules,
            policy=spec.policy,
            scope_visibility=scope_vis,
            output_visibility=spec.output_visibility,
            llm_providers=spec.llm_providers,
            allow_artifacts=spec.allow_artifacts,
            trust_mode=spec.trust_mode,
            allowed_composes=composes,
            allowed_tables=spec.allowed_tables,
            **query_fields,
            **mediator_fields,
        )
    except ManifestError as exc:
        raise UsageProblem(f"the room options do not form a valid manifest: {exc}") from None
    envelope = sign_manifest(manifest, owner_key)
    return api.request("POST", "/v1/rooms", json={"envelope": envelope})


def sign_trust_update(
    previous: dict[str, Any],
    owner_key: OwnerKey,
    *,
    mode: str | None,
    allowed_composes: Sequence[str] | None,
) -> dict[str, Any]:
    """Sign a trust update of a verified manifest (a new manifest hash)."""
    stamp = max(int(time.time()), int(previous.get("updated_at", previous["created_at"])))
    try:
        return _sign_trust_update(
            previous, owner_key, mode=mode, allowed_composes=allowed_composes, updated_at=stamp
        )
    except ManifestError as exc:
        raise UsageProblem(f"invalid trust update: {exc}") from None


@final
@dataclass(frozen=True)
class RoomTarget:
    """Where a room lives and how to reach it.

    Attributes:
        room_id: the room id.
        service: the service base URL.
        bearer: the credential reaching the room, sent as ``Authorization:
            Bearer``: an invite token (``hmq_``), the room's share token
            (``hms_``) or the owner key.
        owner_pubkey_b64: the key the manifest must verify against.
        payer_key: the profile's tenant key, sent as payer for participant runs.
        link: the parsed invite or share link (None for an owner's bare room id).
    """

    room_id: str
    service: str
    bearer: str = field(repr=False)
    owner_pubkey_b64: str
    payer_key: str = field(default="", repr=False)
    link: RoomLink | None = None

    @property
    def is_owner(self) -> bool:
        """Whether the room is addressed with the owner's own key."""
        return self.link is None

    @property
    def is_share(self) -> bool:
        """Whether the room is reached through its share link (``hms_``)."""
        return self.link is not None and self.link.is_share

    @property
    def access(self) -> str:
        """How the room is reached: ``owner``, ``invite`` or ``share``."""
        return "owner" if self.link is None else self.link.kind.label

    def api(self, *, timeout: float = 30.0) -> RoomApi:
        """A client for the room (bearer and payer set)."""
        payer = self.payer_key if self.payer_key and self.payer_key != self.bearer else ""
        return RoomApi(self.service, self.bearer, payer_key=payer, timeout=timeout)


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _service_identity(url: str) -> tuple[str, str, int | None, str] | None:
    try:
        parts = urlsplit(url.strip())
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if not host:
        return None
    return parts.scheme.lower(), host, port, parts.path.rstrip("/")


def same_service(a: str, b: str) -> bool:
    """Whether two base URLs name the same room service.

    Scheme and host case, a default port and trailing slashes do not matter;
    anything else (another host, port, scheme or path) is another service.
    """
    first, second = _service_identity(a), _service_identity(b)
    return first is not None and first == second


def resolve_target(state: LocalState, profile: Profile | None, ref: str) -> RoomTarget:
    """Turn ``hmroom://...`` or an owner's bare room id into a :class:`RoomTarget`.

    Both link forms are taken: an invite (``token=hmq_…``) and the room's share
    link (``share=hms_…``); either credential becomes the target's bearer.
    The profile's tenant key becomes the payer only when the link names the
    profile's own service: a key is never offered to another service.

    Raises:
        UsageProblem: a malformed link, or a bare id without an owner profile.
    """
    payer = profile.api_key if profile and profile.api_key.startswith("hmk_") else ""
    if ref.strip().startswith("hmroom://"):
        try:
            link = RoomLink.parse(ref)
        except LinkError as exc:
            raise UsageProblem(f"{exc}", hint="paste the whole hmroom:// link") from None
        if profile is not None and not same_service(profile.service, link.service_url):
            payer = ""
        return RoomTarget(
            link.room_id, link.service_url, link.token, link.owner_pubkey_b64, payer, link
        )
    if profile is None or not profile.api_key:
        raise UsageProblem(
            f"{ref!r} is not an hmroom:// link and no profile key is configured",
            hint="pass the room's invite or share link, or run: hmctl init",
        )
    key = state.owner_key(profile.name)
    if key is None:
        raise UsageProblem(
            f"profile {profile.name!r} has no room owner key, so {ref!r} cannot be verified",
            hint="use the room's hmroom:// invite or share link",
        )
    return RoomTarget(ref.strip(), profile.service, profile.api_key, key.public_key_b64(), payer)
