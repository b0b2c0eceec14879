"""The participant's side of the bridge: verify and ask a room through hubs.

Theory of operation
-------------------
The participant trusts no hub. Over any satellite connection
(:class:`hivemind_proto.trio.HiveClient`) it:

1. asks for the service attestation with a fresh nonce and verifies it
   itself (:func:`verify_service_attestation`), then verifies the seal-key
   statement against the verified run-signer key and compose hash;
2. sends a sealed ``inspect`` (invite token inside) and verifies the signed
   manifest against the owner key from the invite link, the room's trust
   mode against the verified compose hash, and the agents the service
   reports against the manifest;
3. sends a sealed ``ask`` (question, payer key and budgets inside), opens the
   sealed answer and verifies the signed run attestation against everything
   it knows: the exact question, the exact output, the room, the manifest
   hash, the attested deployment and agents.

Any failure raises :class:`BridgeVerificationError` naming the stage: a
tampering hub causes a refusal, never a wrong answer.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, final

import trio
from hivemind_proto import HiveMessage, MessageType
from hivemind_proto.trio import HiveClient

from ..agents_registry import AgentError, files_digest, read_archive
from ..attestation import (
    AgentPin,
    AttestationError,
    RunAttestationError,
    RunExpectation,
    ServiceAttestation,
    VerificationPolicy,
    verify_run_attestation,
    verify_service_attestation,
)
from ..canonical import b64_encode
from ..links import RoomLink
from ..manifest import ManifestError, verify_signed_manifest
from ._sealing import SealError, open_reply, seal_request, verify_seal_statement
from ._wire import ANSWER, ASK, ATTESTATION, ERROR, INSPECT, PROGRESS, request_message

__all__ = [
    "BridgeError",
    "BridgeVerificationError",
    "RoomBridgeClient",
    "VerifiedAnswer",
    "VerifiedBridgeRoom",
]

_ROLES = ("scope", "query", "mediator")


class BridgeError(Exception):
    """The request could not be completed (refused, denied, no route, timeout).

    Attributes:
        status: the room service's HTTP-style status when it refused the
            request (401/403: the invite or share credential was refused),
            else None.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class BridgeVerificationError(BridgeError):
    """Something the participant checks did not verify: do not trust the room or answer.

    Attributes:
        stage: ``attestation``, ``seal_key``, ``sealed_reply``, ``manifest``,
            ``trust``, ``agents`` or ``run_attestation``.
    """

    def __init__(self, stage: str, detail: str) -> None:
        super().__init__(f"verification failed at {stage}: {detail}")
        self.stage = stage


@final
@dataclass(frozen=True)
class VerifiedBridgeRoom:
    """A room verified through the bridge.

    Attributes:
        link: the invite link (its token stays hidden in reprs).
        service: the verified service attestation.
        seal_key: the verified sealing key (raw X25519 public key).
        manifest: the verified manifest.
        manifest_hash: its hash.
        agents: the agent pins per role, as inspected.
    """

    link: RoomLink
    service: ServiceAttestation
    seal_key: bytes = field(repr=False)
    manifest: dict[str, Any] = field(repr=False)
    manifest_hash: str = ""
    agents: Mapping[str, AgentPin] = field(default_factory=dict)


@final
@dataclass(frozen=True)
class VerifiedAnswer:
    """A verified answer.

    Attributes:
        output: the mediator-approved output.
        run_id: the run.
        status: ``completed`` or ``failed``.
        error: the error text of a failed run.
        checks: what was verified, in order, for display.
        body: the verified run attestation body.
    """

    output: str = field(repr=False)
    run_id: str
    status: str
    error: str
    checks: tuple[str, ...]
    body: dict[str, Any] = field(repr=False)


@final
class RoomBridgeClient:
    """Verify and ask rooms over a satellite connection to any hub.

    Args:
        client: a connected satellite.
        policy: what attestations to accept (dev roots, allowlists).
        timeout: seconds to wait for each answer message.
    """

    def __init__(
        self, client: HiveClient, *, policy: VerificationPolicy, timeout: float = 600.0
    ) -> None:
        self.client = client
        self.policy = policy
        self.timeout = timeout

    async def _exchange(
        self,
        msg_type: str,
        data: Mapping[str, Any],
        nonce: str,
        on_progress: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        query_id = f"room-{secrets.token_hex(12)}"
        await self.client.send(request_message(msg_type, data, query_id))
        with trio.move_on_after(self.timeout):
            while True:
                msg = await self.client.receive()
                payload = _room_payload(msg, query_id)
                if payload is None:
                    continue
                kind, body = payload
                if kind == PROGRESS and body.get("nonce") == nonce and on_progress:
                    on_progress(str(body.get("status")))
                elif kind == ANSWER and body.get("nonce") == nonce:
                    return body
                elif kind == ERROR:
                    raise BridgeError(f"the room service refused: {body.get('error')}")
        raise BridgeError("no answer from the room service in time")

    async def verify_room(self, link: RoomLink) -> VerifiedBridgeRoom:
        """Verify the service attestation, the seal key, the manifest and the agents.

        Raises:
            BridgeVerificationError: a check failed.
            BridgeError: the request failed.
        """
        nonce = secrets.token_bytes(16)
        answer = await self._exchange(ATTESTATION, {"nonce": nonce.hex()}, nonce.hex())
        bundle = answer.get("bundle")
        if not isinstance(bundle, dict) or bundle.get("ready") is not True:
            raise BridgeVerificationError("attestation", "the service cannot attest itself")
        try:
            service = verify_service_attestation(
                bundle.get("attestation"),
                service_url=link.service_url,
                nonce=nonce,
                policy=self.policy,
            )
        except AttestationError as exc:
            raise BridgeVerificationError("attestation", str(exc)) from None
        try:
            seal_key = verify_seal_statement(answer.get("seal_statement"), service)
        except SealError:
            raise BridgeVerificationError(
                "seal_key", "statement not signed by the run signer"
            ) from None
        room = await self._sealed(INSPECT, link, seal_key, {"token": link.token})
        return _verified_room(link, service, seal_key, room.get("room"))

    async def _sealed(
        self,
        msg_type: str,
        link: RoomLink,
        seal_key: bytes,
        body: Mapping[str, Any],
        on_progress: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        op = "inspect" if msg_type == INSPECT else "ask"
        nonce = secrets.token_hex(16)
        envelope, reply_key = seal_request(
            seal_key, op=op, room_id=link.room_id, nonce=nonce, body=body
        )
        answer = await self._exchange(msg_type, envelope, nonce, on_progress)
        try:
            kind, opened = open_reply(
                reply_key, answer.get("sealed_b64"), op=op, room_id=link.room_id, nonce=nonce
            )
        except SealError:
            raise BridgeVerificationError("sealed_reply", "the answer does not open") from None
        if kind == "error":
            status = opened.get("status")
            raise BridgeError(
                f"the room service refused ({status}): {opened.get('error')}",
                status=status if isinstance(status, int) else None,
            )
        return opened

    async def ask(
        self,
        room: VerifiedBridgeRoom,
        question: str,
        *,
        payer_key: str | None = None,
        budgets: Mapping[str, int] | None = None,
        on_progress: Callable[[str], None] | None = None,
        agent_archive: bytes | None = None,
    ) -> VerifiedAnswer:
        """Ask a verified room and verify the signed answer.

        Args:
            room: the verified room.
            question: the question (sealed).
            payer_key: the tenant key that pays (sealed).
            budgets: ``max_tokens``, ``max_llm_calls``, ``timeout_seconds``.
            on_progress: called with each run status.
            agent_archive: a query agent archive to upload and run (uploadable
                rooms; sealed). The run must name exactly this code.

        Raises:
            BridgeVerificationError: the answer does not verify.
            BridgeError: the request failed.
        """
        body: dict[str, Any] = {"token": room.link.token, "query": question}
        if payer_key:
            body["payer_key"] = payer_key
        body.update({k: int(v) for k, v in (budgets or {}).items()})
        digest = ""
        if agent_archive is not None:
            digest = _archive_digest(agent_archive)
            body["agent_archive_b64"] = b64_encode(agent_archive)
        opened = await self._sealed(ASK, room.link, room.seal_key, body, on_progress)
        run = opened.get("run")
        if not isinstance(run, dict):
            raise BridgeVerificationError("run_attestation", "the answer carries no run")
        if agent_archive is not None:
            pin = AgentPin(str(opened.get("agent_id") or ""), digest)
            room = dataclasses.replace(room, agents={**room.agents, "query": pin})
        return _verified_answer(room, question, run)


def _archive_digest(archive: bytes) -> str:
    """The files digest the service will attest for this archive."""
    try:
        files = read_archive(archive, max_archive_bytes=len(archive) + 1).files
    except AgentError as exc:
        raise BridgeError(f"invalid agent archive: {exc}") from None
    return files_digest((path, content) for path, (content, _mode) in files.items())


def _room_payload(msg: HiveMessage, query_id: str) -> tuple[str, dict[str, Any]] | None:
    if msg.msg_type is MessageType.BUS and isinstance(msg.payload, dict):
        if msg.payload.get("type") == "hive.policy.denied":
            raise BridgeError("the hub's policy denied this room request")
        return None
    if msg.msg_type is not MessageType.QUERY or msg.metadata.get("query_id") != query_id:
        return None
    inner = msg.inner
    if inner.msg_type is not MessageType.BUS or not isinstance(inner.payload, dict):
        return None
    kind = inner.payload.get("type")
    if kind == "hive.query.timeout":
        raise BridgeError("no hub on the route is linked to a room service")
    data = inner.payload.get("data")
    return (str(kind), data) if isinstance(data, dict) else None


def _verified_room(
    link: RoomLink, service: ServiceAttestation, seal_key: bytes, room: Any
) -> VerifiedBridgeRoom:
    inner = room.get("room") if isinstance(room, dict) else None
    envelope = inner.get("envelope") if isinstance(inner, dict) else None
    try:
        manifest = verify_signed_manifest(
            envelope, link.owner_pubkey_b64, expected_room_id=link.room_id
        )
    except ManifestError as exc:
        raise BridgeVerificationError("manifest", str(exc)) from None
    assert isinstance(envelope, dict)
    assert isinstance(room, dict)
    trust = manifest["trust"]
    if trust["mode"] != "operator_updates" and service.compose_hash not in trust.get(
        "allowed_composes", []
    ):
        raise BridgeVerificationError("trust", "the room does not allow the live deployment")
    agents: dict[str, AgentPin] = {}
    for role in _ROLES:
        view = room.get(f"{role}_agent")
        declared = (manifest.get(role) or {}).get("agent_id") or ""
        got = str(view.get("agent_id", "")) if isinstance(view, dict) else ""
        if declared and got != declared:
            raise BridgeVerificationError("agents", f"the {role} agent is not the manifest's")
        if isinstance(view, dict):
            agents[role] = AgentPin(got, str(view.get("files_digest_sha256", "")))
    return VerifiedBridgeRoom(
        link, service, seal_key, manifest, str(envelope["manifest_hash"]), agents
    )


def _verified_answer(
    room: VerifiedBridgeRoom, question: str, run: dict[str, Any]
) -> VerifiedAnswer:
    att = run.get("attestation")
    claimed = att.get("body", {}).get("models") if isinstance(att, dict) else None
    models = {r: str(claimed.get(r, "")) for r in _ROLES} if isinstance(claimed, dict) else {}
    expected = RunExpectation(
        signer_pubkey_b64=room.service.run_signer_pubkey_b64,
        room_id=room.link.room_id,
        manifest_hash=room.manifest_hash,
        compose_hash=room.service.compose_hash,
        platform=room.service.platform,
        agents=room.agents,
        models=models,
        prompt=question,
        output=str(run.get("output") or ""),
        now=int(time.time()),
        run_id=str(run.get("run_id", "")),
        status=str(run.get("status", "")),
        error=str(run.get("error") or ""),
    )
    try:
        body = verify_run_attestation(att, expected=expected)
    except RunAttestationError as exc:
        raise BridgeVerificationError("run_attestation", f"{exc.field} does not match") from None
    checks = (
        f"service attestation ({room.service.label}, {room.service.platform}) with a fresh nonce",
        "seal key signed by the attested run signer",
        "room manifest signed by the owner key from the invite",
        "run attestation signed by the run signer (room, manifest, agents, prompt, output)",
    )
    return VerifiedAnswer(
        output=expected.output,
        run_id=expected.run_id or "",
        status=expected.status,
        error=expected.error,
        checks=checks,
        body=body,
    )
