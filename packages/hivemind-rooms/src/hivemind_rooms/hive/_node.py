"""The room service as a HiveMind node: a websocket endpoint hubs link to.

Theory of operation
-------------------
A hub links to the service the way it links to a parent hub: it connects to
``/`` (or ``/v1/hive/``) with a peer credential from :class:`PeerStore` and
must agree profile N (Noise, legacy handshakes refused). The node's Noise
static key and the sealing key are derived from the attestation provider, so
both exist only inside the attested instance.

The hub relays ``hivemind.room.*`` requests (see :mod:`._wire`). The node
re-reads the peer's grant on every request, answers ``attestation`` in the
clear (it is public), opens ``inspect`` and ``ask`` with the sealing key and
then performs them through the service's own HTTP API, called in process.
Every rule (invite and payer authentication, budgets, visibility, billing,
idempotency) is therefore exactly the HTTP API's; the node adds only the
sealing. The participant's nonce is the run's idempotency key, so a replayed
sealed ask returns the first run instead of paying for a second one.

Progress messages carry only the run status; answers and errors about an
opened request are sealed to the participant's reply key. Requests run as
tasks bounded by a semaphore; nothing from a request is logged.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from typing import Any, final

import httpx
import trio
from hivemind_proto import (
    HiveMessage,
    HubSettings,
    MessageReceived,
    MessageType,
    NoiseIdentity,
    RemoteProtocolError,
    StaticKeypair,
    authorization_from_target,
)
from hivemind_proto.trio import (
    AsgiWebSocketTransport,
    ChannelClosed,
    ChannelLimits,
    HiveChannel,
    run_hub_session,
)
from starlette.applications import Starlette
from starlette.websockets import WebSocket

from ..canonical import CanonicalError, b64_decode
from ._peers import PeerHub, PeerStore
from ._sealing import OpenedRequest, SealError, SealKey
from ._wire import ANSWER, ASK, ATTESTATION, ERROR, INSPECT, PROGRESS, REQUEST_OPS
from ._wire import response_message as _response

__all__ = ["HiveNode", "hive_endpoint"]

log = logging.getLogger("hivemind_rooms.hive")
_BASE = "http://room-service.internal"
_POLL_SECONDS = 0.2
_MAX_RUN_SECONDS = 900.0
_CONCURRENT_REQUESTS = 16
_CLOSE_POLICY = 1008
#: Sends one response message (type, data) to the request being answered.
_Reply = Callable[[str, Mapping[str, Any]], Awaitable[None]]


@final
class HiveNode:
    """The node state of one app: identity, sealing key, peer store.

    Args:
        app: the room service app (its lifespan must be running).
    """

    def __init__(self, app: Starlette) -> None:
        services = app.state.services
        attestation = services.attestation
        if attestation is None or not attestation.ready:
            raise RuntimeError("the hive endpoint needs a ready attestation service")
        provider, compose = attestation.provider, attestation.compose_hash
        self.app = app
        self.static = StaticKeypair(provider.derive_key("hivemind-rooms/hive-node/v1"))
        digest = hashlib.sha256(bytes(self.static.public)).hexdigest()
        self.node_id = f"rooms-{digest[:32]}"
        self.seal_key = SealKey.from_provider(provider, compose_hash=compose)
        self.statement = self.seal_key.statement(attestation.run_signer, compose_hash=compose)
        self.peers = PeerStore(services.settings.data_dir)
        self.slots = trio.Semaphore(_CONCURRENT_REQUESTS)

    @classmethod
    def of(cls, app: Starlette) -> HiveNode | None:
        """The app's node, created on first use (None when attestation is not ready)."""
        node = getattr(app.state, "hive_node", None)
        if node is None:
            try:
                node = cls(app)
            except RuntimeError:
                return None
            app.state.hive_node = node
        return node

    def settings_for(self, peer: PeerHub, useragent: str) -> HubSettings:
        """Handshake settings for a peer hub: Noise only."""
        return HubSettings(
            hello={"pubkey": None, "peer": f"{useragent}::{peer.name}", "node_id": self.node_id},
            password=peer.password,
            noise=NoiseIdentity(self.static),
            legacy_allowed=False,
        )

    @asynccontextmanager
    async def _api(self) -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url=_BASE, timeout=60) as client:
            yield client

    # -- one linked hub -------------------------------------------------------

    async def serve_channel(self, access_key: str, channel: HiveChannel, _auth: Any) -> None:
        """Answer the room requests a linked hub relays until the link closes."""
        async with trio.open_nursery() as nursery:
            try:
                while True:
                    event = await channel.receive_event()
                    if isinstance(event, MessageReceived):
                        self._dispatch(nursery, channel, access_key, event.message)
            except ChannelClosed:
                nursery.cancel_scope.cancel()

    def _dispatch(
        self, nursery: trio.Nursery, channel: HiveChannel, access_key: str, msg: HiveMessage
    ) -> None:
        if msg.msg_type is not MessageType.QUERY or msg.metadata.get("is_response") is True:
            return
        inner = msg.inner
        payload = inner.payload if inner.msg_type is MessageType.BUS else None
        if not isinstance(payload, Mapping) or payload.get("type") not in REQUEST_OPS:
            return
        nursery.start_soon(self._request, channel, access_key, msg, dict(payload))

    async def _request(
        self, channel: HiveChannel, access_key: str, msg: HiveMessage, payload: dict[str, Any]
    ) -> None:
        kind = str(payload["type"])
        data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
        assert isinstance(data, dict)

        async def reply(msg_type: str, body: Mapping[str, Any]) -> None:
            with suppress(ChannelClosed):
                await channel.send(_response(msg, msg_type, body, responder=self.node_id))

        peer = await trio.to_thread.run_sync(self.peers.by_access_key, access_key)
        if peer is None or kind not in peer.allowed_types:
            await reply(ERROR, {"nonce": str(data.get("nonce", "")), "error": "not allowed"})
            return
        try:
            self.slots.acquire_nowait()
        except trio.WouldBlock:
            await reply(ERROR, {"nonce": str(data.get("nonce", "")), "error": "busy"})
            return
        try:
            if kind == ATTESTATION:
                await self._attestation(data, reply)
            else:
                await self._sealed(kind, data, reply)
        finally:
            self.slots.release()

    async def _attestation(self, data: dict[str, Any], reply: _Reply) -> None:
        nonce = data.get("nonce")
        if not isinstance(nonce, str) or len(nonce) > 64:
            await reply(ERROR, {"nonce": "", "error": "a hex nonce is required"})
            return
        async with self._api() as api:
            r = await api.get("/v1/attestation", params={"nonce": nonce})
        if r.status_code != 200:
            await reply(ERROR, {"nonce": nonce, "error": f"attestation failed ({r.status_code})"})
            return
        await reply(ANSWER, {"nonce": nonce, "bundle": r.json(), "seal_statement": self.statement})

    async def _sealed(self, kind: str, data: dict[str, Any], reply: _Reply) -> None:
        try:
            opened = self.seal_key.open_request(data, op=REQUEST_OPS[kind])
        except SealError:
            await reply(ERROR, {"nonce": str(data.get("nonce", ""))[:64], "error": "refused"})
            return
        try:
            if kind == INSPECT:
                body = await self._inspect(opened)
            else:
                assert kind == ASK
                body = await self._ask(opened, reply)
            sealed = opened.seal_reply("answer", body)
        except _Refused as exc:
            sealed = opened.seal_reply("error", {"status": exc.status, "error": exc.text})
        await reply(ANSWER, {"nonce": opened.nonce, "sealed_b64": sealed})

    async def _inspect(self, opened: OpenedRequest) -> dict[str, Any]:
        headers = _headers(opened.body, payer=False)
        async with self._api() as api:
            r = await api.get(f"/v1/rooms/{opened.room_id}/attest", headers=headers)
        _check(r)
        return {"room": r.json()}

    async def _ask(self, opened: OpenedRequest, reply: _Reply) -> dict[str, Any]:
        body = opened.body
        request = {"query": body.get("query")}
        for name in ("max_tokens", "max_llm_calls", "timeout_seconds"):
            if body.get(name) is not None:
                request[name] = body[name]
        headers = {**_headers(body, payer=True), "X-Hivemind-Idempotency-Key": opened.nonce}
        async with self._api() as api:
            if isinstance(body.get("agent_archive_b64"), str):
                r = await self._upload(api, opened, request, headers)
            else:
                url = f"/v1/rooms/{opened.room_id}/runs"
                r = await api.post(url, json=request, headers=headers)
            _check(r)
            started = r.json()
            run = await self._wait(api, str(started["run_id"]), headers, opened, reply)
        keys = ("run_id", "status", "output", "error", "attestation")
        return {"run": {k: run.get(k) for k in keys}, "agent_id": started.get("agent_id")}

    async def _upload(
        self,
        api: httpx.AsyncClient,
        opened: OpenedRequest,
        request: dict[str, Any],
        headers: dict[str, str],
    ) -> httpx.Response:
        """Upload the participant's sealed query agent and run it (uploadable rooms)."""
        try:
            archive = b64_decode(opened.body["agent_archive_b64"])
        except CanonicalError:
            raise _Refused(400, "the agent archive is not base64") from None
        fields = {k: str(v) for k, v in request.items() if v is not None}
        fields["inspection_mode"] = "sealed"
        files = {"archive": ("agent.tar.gz", archive, "application/gzip")}
        upload_headers = {k: v for k, v in headers.items() if "idempotency" not in k.lower()}
        url = f"/v1/rooms/{opened.room_id}/query-agents"
        return await api.post(url, data=fields, files=files, headers=upload_headers)

    async def _wait(
        self,
        api: httpx.AsyncClient,
        run_id: str,
        headers: dict[str, str],
        opened: OpenedRequest,
        reply: _Reply,
    ) -> dict[str, Any]:
        last = ""
        with trio.move_on_after(_MAX_RUN_SECONDS):
            while True:
                r = await api.get(f"/v1/runs/{run_id}", headers=headers)
                _check(r)
                run = dict(r.json())
                status = str(run.get("status"))
                if status in ("completed", "failed"):
                    return run
                if status != last:
                    last = status
                    await reply(PROGRESS, {"nonce": opened.nonce, "status": status})
                await trio.sleep(_POLL_SECONDS)
        raise _Refused(504, "the run did not finish in time")


class _Refused(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


def _headers(body: Mapping[str, Any], *, payer: bool) -> dict[str, str]:
    token = body.get("token")
    if not isinstance(token, str) or not token or len(token) > 256:
        raise _Refused(401, "an invite or share token is required")
    headers = {"Authorization": f"Bearer {token}"}
    key = body.get("payer_key")
    if payer and isinstance(key, str) and key and len(key) <= 256:
        headers["X-Hivemind-Api-Key"] = key
    return headers


def _check(response: httpx.Response) -> None:
    if response.status_code == 200:
        return
    try:
        detail = response.json().get("detail") or response.json().get("error")
    except ValueError:
        detail = None
    raise _Refused(response.status_code, str(detail or "request failed")[:500])


async def hive_endpoint(websocket: WebSocket) -> None:
    """The Starlette websocket endpoint (``/`` and ``/v1/hive/``)."""
    node = HiveNode.of(websocket.app)
    target = f"{websocket.url.path}?{websocket.url.query}"
    try:
        auth = authorization_from_target(target)
    except RemoteProtocolError:
        auth = None
    peer = None
    if node is not None and auth is not None:
        peer = await trio.to_thread.run_sync(node.peers.by_access_key, auth.access_key)
    await websocket.accept()
    if node is None or auth is None or peer is None:
        log.info("refused a hive link: unknown credential or attestation not ready")
        await websocket.close(_CLOSE_POLICY, "invalid access key")
        return
    transport = AsgiWebSocketTransport(websocket.receive, websocket.send)
    handler = functools.partial(node.serve_channel, peer.access_key)
    await run_hub_session(
        transport,
        node.settings_for(peer, auth.useragent),
        auth,
        handler,
        rng=os.urandom,
        limits=ChannelLimits(handshake_timeout=30.0),
    )
