"""`make demo`: a satellite asks an attested room through a hub, and verifies the answer.

On loopback, with the embedded defaults (SQLite, dev attestation, the fastest
sandbox runner this machine has), it:

1. starts the room service and creates a room over sample data with the
   default scope, query and mediator agents;
2. registers a hub as a peer of the room service, starts the hub and links it
   to the room service (profile N);
3. connects a satellite to the hub, verifies the room through the hub (service
   attestation with a fresh nonce, seal key, signed manifest, agents), asks a
   sealed question, verifies the signed run attestation over the sealed
   answer, and prints it with what was verified.

Exits 0 only if every step verified. The functions here double as fixtures of
the repository's end-to-end bridge tests.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import json
import os
import secrets
import sys
import tarfile
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import trio

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_QUESTION = "Who lives where? SQL: SELECT name, email, city FROM people"
SAMPLE_PEOPLE = (
    ("Ann", "ann@example.org", "Lisbon"),
    ("Bob", "bob@example.org", "Porto"),
    ("Cy", "cy@example.org", "Lisbon"),
)


def _pack_module() -> Any:
    spec = importlib.util.spec_from_file_location("agents_pack", ROOT / "agents" / "pack.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pick_runner() -> str:
    """The sandbox runner for the demo: bwrap (fast) when usable, else docker.

    Raises:
        SystemExit: neither sandbox works on this machine.
    """
    from hivemind_rooms.runners import available_runners

    usable = {s.kind.value: s for s in available_runners() if s.available}
    for kind in ("bwrap", "docker"):
        if kind in usable:
            return kind
    raise SystemExit("demo: no sandbox runner (bubblewrap or docker) is usable here")


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _ok(response: Any) -> dict[str, Any]:
    if response.status_code != 200:
        raise RuntimeError(f"room service answered {response.status_code}: {response.text}")
    return dict(response.json())


async def _upload(client: httpx.AsyncClient, key: str, agent: str, kind: str) -> str:
    archive = _pack_module().pack_agent(ROOT / "agents" / agent)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        assert "hivemind_agent.py" in tar.getnames()
    r = await client.post(
        "/v1/room-agents",
        data={"name": agent, "agent_type": kind},
        files={"archive": ("agent.tar.gz", archive, "application/gzip")},
        headers=_auth(key),
    )
    return str((await _ok(r))["agent_id"])


async def create_sample_room(
    client: httpx.AsyncClient, admin_key: str, *, uploadable: bool = False
) -> dict[str, Any]:
    """Create an owner and a payer tenant and a room over sample data.

    With ``uploadable`` the room has no fixed query agent: participants bring
    their own (sealed).

    Returns:
        ``{"link", "payer_key", "room_id", "agents"}``.
    """
    from hivemind_rooms.credentials import new_room_id
    from hivemind_rooms.manifest import OwnerKey, build_manifest, sign_manifest

    tenant = await _ok(await client.post("/v1/admin/tenants", json={"name": "owner"},
                                         headers=_auth(admin_key)))  # fmt: skip
    payer = await _ok(await client.post("/v1/admin/tenants", json={"name": "payer"},
                                        headers=_auth(admin_key)))  # fmt: skip
    key = tenant["api_key"]
    statements = [("CREATE TABLE people (name TEXT, email TEXT, city TEXT)", [])]
    statements += [("INSERT INTO people VALUES (?, ?, ?)", list(p)) for p in SAMPLE_PEOPLE]
    for sql, params in statements:
        await _ok(await client.post("/v1/tenant/sql", json={"sql": sql, "params": params},
                                    headers=_auth(key)))  # fmt: skip
    agents = {
        "scope": await _upload(client, key, "default-scope", "scope"),
        "query": await _upload(client, key, "default-query", "query"),
        "mediator": await _upload(client, key, "default-mediator", "mediator"),
    }
    owner = OwnerKey.generate()
    manifest = build_manifest(
        room_id=new_room_id(),
        tenant_id=tenant["tenant_id"],
        owner_pubkey_b64=owner.public_key_b64(),
        scope_agent_id=agents["scope"],
        query_agent_id="" if uploadable else agents["query"],
        mediator_agent_id=agents["mediator"],
        query_mode="uploadable" if uploadable else "fixed",
        scope_visibility="inspectable",
        query_visibility="sealed" if uploadable else "inspectable",
        policy="hide: email\nredact: Porto",
        llm_providers=(),
        allowed_tables=["people"],
        created_at=int(time.time()),
    )
    envelope = sign_manifest(manifest, owner)
    room = await _ok(await client.post("/v1/rooms", json={"envelope": envelope},
                                       headers=_auth(key)))  # fmt: skip
    return {
        "link": room["link"],
        "payer_key": payer["api_key"],
        "room_id": room["room_id"],
        "agents": agents,
    }


def hub_config(data: Path, *, room_port: int, peer_key: str, peer_password: str) -> Any:
    """A hub on 127.0.0.1 (port 0), SQLite clients, linked to the room service."""
    from hivemind_hub.config import default_config_dict, parse_config

    tree = default_config_dict(data)
    tree["network_protocol"]["hivemind-websocket-plugin"]["host"] = "127.0.0.1"
    tree["network_protocol"]["hivemind-websocket-plugin"]["port"] = 0
    tree["database"] = {
        "module": "hivemind-sqlite-db-plugin",
        "hivemind-sqlite-db-plugin": {"path": str(data / "clients.db")},
    }
    tree["agent_protocol"] = {"module": None}
    tree["upstream"] = {
        "enabled": True,
        "host": "127.0.0.1",
        "port": room_port,
        "key": peer_key,
        "password": peer_password,
        "require_noise": True,
    }
    return parse_config(tree)


def linked_hub_config(room_data: Path, hub_data: Path, base: str, name: str) -> Any:
    """Register a peer hub ``name`` with the room service at ``base``; its hub config.

    Args:
        room_data: The room service's data directory (holds its peer store).
        hub_data: The hub's data directory.
        base: The room service's base URL (``http://127.0.0.1:PORT``).
        name: The name the room service records for the hub.

    Returns:
        A :func:`hub_config` linked to the room service with the new peer credential.
    """
    from hivemind_rooms.hive import PeerStore

    peers = PeerStore(room_data)
    try:
        peer = peers.add(name)
    finally:
        peers.close()
    return hub_config(
        hub_data,
        room_port=int(base.rsplit(":", 1)[1]),
        peer_key=peer.access_key,
        peer_password=peer.password,
    )


@asynccontextmanager
async def running_room_service(
    data: Path, admin_key: str, **serve_kwargs: Any
) -> AsyncIterator[str]:
    """Serve the room service on 127.0.0.1:0; yields its base URL."""
    from hivemind_rooms._serve import serve_rooms
    from hivemind_rooms.settings import Settings

    settings = Settings(data_dir=data, admin_key=admin_key, host="127.0.0.1", port=0)
    async with trio.open_nursery() as nursery:
        urls = await nursery.start(functools.partial(serve_rooms, settings, **serve_kwargs))
        try:
            yield str(urls[0]).rstrip("/")
        finally:
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def running_hub(data: Path, config: Any, **serve_kwargs: Any) -> AsyncIterator[Any]:
    """Serve a hub with an SQLite store in ``data``; yields the ``ServingHub``."""
    from hivemind_hub.serve import serve_hub
    from hivemind_hub.store import SQLiteClientStore

    store = SQLiteClientStore(data / "clients.db")
    try:
        async with trio.open_nursery() as nursery:
            serving = await nursery.start(
                lambda task_status: serve_hub(
                    config,
                    data=data / "identity",
                    store=store,
                    task_status=task_status,
                    **serve_kwargs,
                )
            )
            try:
                yield serving
            finally:
                nursery.cancel_scope.cancel()
    finally:
        store.close()


async def wait_for(predicate: Callable[[], Any], seconds: float) -> None:
    """Poll ``predicate`` (state other tasks change) until true, at most ``seconds``."""
    with trio.fail_after(seconds):
        while not predicate():  # noqa: ASYNC110 (no event to wait on)
            await trio.sleep(0.02)


def record_relayed(hub: Any) -> list[str]:
    """Record (as JSON text) every message the hub's router hands to its I/O."""
    from hivemind_proto import HiveMessage

    seen: list[str] = []
    apply = hub.apply

    def recording(actions: list[Any]) -> None:
        for action in actions:
            message = getattr(action, "message", None)
            if isinstance(message, HiveMessage):
                seen.append(json.dumps(message.to_dict(), default=str))
        apply(actions)

    hub.apply = recording
    return seen


def dev_policy(room_data: Path) -> Any:
    """Trust the local service's dev attestation root (the demo runs unattested)."""
    from hivemind_rooms.attestation import VerificationPolicy
    from hivemind_rooms.attestation.service import load_or_create_dev_provider

    root = load_or_create_dev_provider(room_data, "{}").root_public_key_b64()
    return VerificationPolicy(dev_roots=frozenset({root}))


async def demo(work: Path, say: Callable[[str], None], **serve_kwargs: Any) -> None:
    """Run the whole demo in ``work``."""
    from hivemind_proto.trio import SatelliteIdentity, open_hive
    from hivemind_rooms.hive import ROOM_TYPES, RoomBridgeClient
    from hivemind_rooms.links import RoomLink

    room_data, hub_data = work / "rooms", work / "hub"
    room_data.mkdir()
    hub_data.mkdir()
    admin = secrets.token_urlsafe(24)
    async with running_room_service(room_data, admin, **serve_kwargs) as base:
        say(f"room service listening on {base} (runner: {os.environ['HIVEMIND_RUNNER']})")
        async with httpx.AsyncClient(base_url=base, timeout=120) as http:
            sample = await create_sample_room(http, admin)
        say(f"room {sample['room_id']} created over {len(SAMPLE_PEOPLE)} sample rows")
        config = linked_hub_config(room_data, hub_data, base, "demo-hub")
        async with running_hub(hub_data, config) as hub:
            await wait_for(lambda: hub.hub.router.upstream_peer is not None, 90)
            say(f"hub {hub.hub.identity.node_id} on port {hub.port} linked to the room service")
            relayed = record_relayed(hub.hub)
            sat_key, sat_password = secrets.token_hex(16), secrets.token_urlsafe(18)
            hub.hub.store.create(
                api_key=sat_key,
                name="demo-satellite",
                password=sat_password,
                allowed_types=list(ROOM_TYPES),
                can_escalate=True,
            )
            identity = SatelliteIdentity(
                access_key=sat_key, password=sat_password, useragent="DemoSatellite"
            )
            async with open_hive(f"ws://127.0.0.1:{hub.port}", identity) as sat:
                say("satellite connected to the hub")
                bridge = RoomBridgeClient(sat, policy=dev_policy(room_data))
                room = await bridge.verify_room(RoomLink.parse(sample["link"]))
                say(f"room verified: manifest {room.manifest_hash[:16]}... signed by the owner")
                say(
                    f"attestation verified: {room.service.platform} ({room.service.label}), "
                    f"compose {room.service.compose_hash[:16]}..., seal key bound to the run signer"
                )
                say(f"asking: {SAMPLE_QUESTION}")
                answer = await bridge.ask(
                    room,
                    SAMPLE_QUESTION,
                    payer_key=sample["payer_key"],
                    on_progress=lambda status: say(f"  run {status}"),
                )
                say(f"run attestation verified: run {answer.run_id} ({answer.status})")
                for check in answer.checks:
                    say(f"  verified: {check}")
                say("answer:")
                for line in answer.output.splitlines() or [""]:
                    say(f"  {line}")
        markers = [SAMPLE_QUESTION, *(x for x in answer.output.splitlines() if len(x) > 8)]
        clear = [t for t in relayed if any(m in t for m in markers)]
        if clear:
            raise RuntimeError("the hub relayed the question or the answer in clear")
        say(f"the hub relayed {len(relayed)} messages; none held the question or the answer")


def _describe(exc: BaseException) -> str:
    """The innermost failure of an exception group, as one line."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


def main() -> int:
    """Entry point of ``make demo``."""
    os.environ.setdefault("HIVEMIND_RUNNER", pick_runner())
    started = time.monotonic()

    def say(text: str) -> None:
        print(f"demo: {text}", flush=True)

    with tempfile.TemporaryDirectory(prefix="hivemind-demo-") as tmp:
        try:
            trio.run(demo, Path(tmp), say)
        except Exception as exc:  # the demo's one failure report
            say(f"FAILED: {_describe(exc)}")
            return 1
    say(f"done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
