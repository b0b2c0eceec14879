"""A client library for the room service: API, local state, verification, runs.

The ``hmctl`` room commands are a thin shell over this package; other code
(scripts, satellites, tests) can import it directly::

    from hmctl.client import LocalState, RoomApi, TrustOptions, resolve_target, verify_room

    state = LocalState()
    target = resolve_target(state, state.load_profile("bob"), link_text)
    with target.api() as api:
        room = verify_room(api, state, TrustOptions(), room_id=target.room_id,
                           owner_pubkey_b64=target.owner_pubkey_b64)
"""

from __future__ import annotations

from .api import RoomApi, pack_agent
from .errors import (
    AccessRefused,
    AttestationInvalid,
    Conflict,
    InvalidState,
    NetworkFailure,
    NotFound,
    PaymentRequired,
    RoomClientError,
    RunFailed,
    RunsUnavailable,
    RunTimeout,
    ServiceError,
    TrustRefused,
    UsageProblem,
)
from .rooms import RoomSpec, RoomTarget, create_room, resolve_target, sign_trust_update
from .runs import (
    RunBudget,
    artifact_names,
    fetch_artifacts,
    local_agent_view,
    run_stage,
    submit_run,
    upload_and_run,
    wait_for_run,
)
from .state import LocalState, Profile, acceptance_key, atomic_write, state_dir
from .verify import (
    ServiceGate,
    TrustOptions,
    VerifiedRoom,
    VerifiedService,
    manifest_summary,
    verify_room,
    verify_run,
    verify_service,
)

__all__ = [
    "AccessRefused",
    "AttestationInvalid",
    "Conflict",
    "InvalidState",
    "LocalState",
    "NetworkFailure",
    "NotFound",
    "PaymentRequired",
    "Profile",
    "RoomApi",
    "RoomClientError",
    "RoomSpec",
    "RoomTarget",
    "RunBudget",
    "RunFailed",
    "RunTimeout",
    "RunsUnavailable",
    "ServiceError",
    "ServiceGate",
    "TrustOptions",
    "TrustRefused",
    "UsageProblem",
    "VerifiedRoom",
    "VerifiedService",
    "acceptance_key",
    "artifact_names",
    "atomic_write",
    "create_room",
    "fetch_artifacts",
    "local_agent_view",
    "manifest_summary",
    "pack_agent",
    "resolve_target",
    "run_stage",
    "sign_trust_update",
    "state_dir",
    "submit_run",
    "upload_and_run",
    "verify_room",
    "verify_run",
    "verify_service",
    "wait_for_run",
]
