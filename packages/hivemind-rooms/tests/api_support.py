"""Shared helpers for the HTTP API tests (loaded by path: tests are not a package)."""

from __future__ import annotations

import contextlib
import importlib.util
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hivemind_rooms.app import create_app
from hivemind_rooms.credentials import new_room_id
from hivemind_rooms.manifest import OwnerKey, build_manifest, sign_manifest
from hivemind_rooms.settings import Settings
from hivemind_rooms.vault import FAST_KDF
from starlette.testclient import TestClient

ADMIN = "admin-key-for-tests-0123456789"


def load_sibling(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


archives = load_sibling("agent_archives")


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"data_dir": tmp_path, "admin_key": ADMIN}
    values.update(overrides)
    return Settings(**values)


@contextlib.contextmanager
def client(tmp_path: Path, **overrides: Any) -> Iterator[TestClient]:
    app = create_app(settings(tmp_path, **overrides), kdf=FAST_KDF)
    with TestClient(app, backend="trio", raise_server_exceptions=True) as c:
        yield c


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def admin_headers() -> dict[str, str]:
    return auth(ADMIN)


def new_tenant(c: TestClient, name: str = "alice") -> dict[str, Any]:
    r = c.post(
        "/v1/admin/tenants",
        json={"name": name, "allow_duplicate_name": True},
        headers=admin_headers(),
    )
    assert r.status_code == 200, r.text
    return r.json()


def upload_agent(
    c: TestClient,
    key: str,
    *,
    name: str = "agent",
    agent_type: str = "scope",
    mode: str = "full",
    archive: bytes | None = None,
) -> Any:
    data = {"name": name, "agent_type": agent_type, "inspection_mode": mode}
    files = {"archive": ("agent.tar.gz", archive or archives.good_agent(), "application/gzip")}
    return c.post("/v1/room-agents", data=data, files=files, headers=auth(key))


def signed_room(tenant_id: str, owner: OwnerKey, scope_agent_id: str, **fields: Any) -> dict:
    manifest = build_manifest(
        room_id=fields.pop("room_id", None) or new_room_id(),
        tenant_id=tenant_id,
        owner_pubkey_b64=owner.public_key_b64(),
        scope_agent_id=scope_agent_id,
        created_at=int(time.time()),
        **fields,
    )
    return sign_manifest(manifest, owner)


def make_room(
    c: TestClient, tenant: dict[str, Any], owner: OwnerKey, **fields: Any
) -> dict[str, Any]:
    agent = upload_agent(c, tenant["api_key"]).json()["agent_id"]
    envelope = signed_room(
        tenant["tenant_id"], owner, agent, scope_visibility="inspectable", **fields
    )
    r = c.post("/v1/rooms", json={"envelope": envelope}, headers=auth(tenant["api_key"]))
    assert r.status_code == 200, r.text
    return r.json()


def db_state(data_dir: Path) -> dict[str, list[str]]:
    """A comparable dump of every database under the data directory."""
    state = {}
    for path in sorted(data_dir.rglob("*.sqlite3")):
        conn = sqlite3.connect(path)
        state[str(path.relative_to(data_dir))] = list(conn.iterdump())
        conn.close()
    return state


def all_bytes(data_dir: Path) -> bytes:
    """Every byte stored under the data directory (databases, WAL files, key files)."""
    return b"".join(p.read_bytes() for p in sorted(data_dir.rglob("*")) if p.is_file())
