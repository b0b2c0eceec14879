"""No key goes to a room service before its attestation verified (spec 13, #33).

Every command that sends a credential (``init``, the ``admin`` commands,
``balance``, ``whoami``, ``redeem-credit``) first verifies the service with a
fresh nonce. The real room service runs on 127.0.0.1 port 0; hmctl reaches it
through a recording HTTP relay on loopback (real sockets, every request
forwarded unchanged), so the tests see exactly what left the client. The
service's own records (its tenants, a credit code's redemptions) show that
a refused command changed nothing there either.
"""

from __future__ import annotations

import base64
import importlib.util
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

_spec = importlib.util.spec_from_file_location(
    "room_support", Path(__file__).with_name("room_support.py")
)
sup = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sup)
room_env, world = sup.room_env, sup.world

_HOP = frozenset({"connection", "transfer-encoding", "content-length", "keep-alive", "host"})
_MAX_BODY = 1 << 20


class Relay:
    """An HTTP relay on 127.0.0.1 port 0 that records every request it forwards."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.seen: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                size = min(int(self.headers.get("Content-Length") or 0), _MAX_BODY)
                body = self.rfile.read(size) if size else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                with relay._lock:
                    relay.seen.append(
                        {"method": self.command, "path": self.path, "headers": headers,
                         "body": body}
                    )  # fmt: skip
                with httpx.Client(base_url=relay.upstream, timeout=30) as client:
                    answer = client.request(self.command, self.path, headers=headers, content=body)
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in _HOP and name.lower() != "content-encoding":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_DELETE = _forward

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Relay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def carried(self, secret: str) -> list[str]:
        """The requests (method and path) in which ``secret`` appeared anywhere."""
        with self._lock:
            seen = list(self.seen)
        return [
            f"{r['method']} {r['path']}"
            for r in seen
            if secret in r["path"]
            or secret.encode() in r["body"]
            or any(secret in v for v in r["headers"].values())
        ]

    def paths(self) -> list[str]:
        with self._lock:
            return [f"{r['method']} {r['path'].split('?')[0]}" for r in self.seen]


@pytest.fixture
def relayed(world) -> Iterator[tuple[Any, Relay]]:
    with Relay(world.url) as relay:
        yield world, relay


def _admin(path: str, key: str, **kwargs: Any) -> Any:
    """The operator's direct view of the service (not through hmctl)."""
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.request(kwargs.pop("method", "GET"), path, headers=headers, timeout=30, **kwargs)


def _commands(url: str, tenant_key: str, code: str) -> list[tuple[str, tuple[str, ...], str]]:
    """(label, argv, the credential it sends) for every credentialed command under test."""
    admin = ("--service", url, "--admin-key", sup.ADMIN)
    return [
        ("init", ("--profile", "p", "init", "--service", url, "--api-key", tenant_key),
         tenant_key),
        ("admin tenants create", ("admin", "tenants", "create", "mallory", *admin), sup.ADMIN),
        ("admin tenants list", ("admin", "tenants", "list", *admin), sup.ADMIN),
        ("admin credit-codes create", ("admin", "credit-codes", "create", "--credit", "9",
                                       *admin), sup.ADMIN),
        ("admin billing accounts", ("admin", "billing", "accounts", *admin), sup.ADMIN),
        ("admin prices list", ("admin", "prices", "list", *admin), sup.ADMIN),
        ("balance", ("--profile", "carol", "balance"), tenant_key),
        ("whoami", ("--profile", "carol", "whoami"), tenant_key),
        ("redeem-credit", ("--profile", "carol", "redeem-credit", code), tenant_key),
        ("agents list", ("--profile", "carol", "agents", "list"), tenant_key),
        ("room list", ("--profile", "carol", "room", "list"), tenant_key),
    ]  # fmt: skip


def _setup(w: Any, relay: Relay) -> tuple[str, str, str]:
    """A tenant with a profile pointing at the relay, and a credit code (made directly)."""
    from hmctl.client import LocalState, Profile

    created = _admin(f"{w.url}/v1/admin/tenants", sup.ADMIN, method="POST", json={"name": "carol"})
    assert created.status_code == 200, created.text
    key = created.json()["api_key"]
    LocalState().save_profile(Profile("carol", relay.url, key, "tenant"))
    minted = _admin(
        f"{w.url}/v1/admin/credit-codes", sup.ADMIN, method="POST",
        json={"credit_usd": "1", "max_redemptions": 1},
    )  # fmt: skip
    assert minted.status_code == 200, minted.text
    return key, minted.json()["code"], minted.json()["code_id"]


def _nothing_happened(w: Any, code_id: str) -> None:
    names = [t["name"] for t in _admin(f"{w.url}/v1/admin/tenants", sup.ADMIN).json()["tenants"]]
    assert names == ["carol"]
    codes = _admin(f"{w.url}/v1/admin/credit-codes", sup.ADMIN).json()["credit_codes"]
    assert [c["redeemed_count"] for c in codes if c["code_id"] == code_id] == [0]
    assert len(codes) == 1


def _refused(w: Any, relay: Relay, commands: list, exit_code: int, *flags: str) -> None:
    for label, argv, secret in commands:
        result = w.run(*flags, *argv)
        assert result.exit_code == exit_code, (label, result.stdout, result.stderr)
        assert f"no key was sent to {relay.url}" in result.stderr, label
        assert "hint:" in result.stderr
        assert "trust attest" in result.stderr, label
        assert relay.carried(secret) == [], label
    # the only requests that left the client asked for a fresh attestation, without a key
    assert set(relay.paths()) == {"GET /v1/attestation"}
    assert all("authorization" not in {k.lower() for k in r["headers"]} for r in relay.seen)


def test_untrusted_dev_root_gets_no_key(relayed) -> None:
    w, relay = relayed
    key, code, code_id = _setup(w, relay)
    stranger = base64.b64encode(os.urandom(32)).decode()
    w.ok("trust", "dev-root", "add", stranger)
    # even with -y (approve any compose hash) the signature does not verify: exit 11
    commands = _commands(relay.url, key, code)
    _refused(w, relay, commands, 11, "-y")
    first = w.run("-y", *commands[0][1])
    assert "service attestation rejected" in first.stderr
    assert "hmctl trust dev-root add" in first.stderr
    _nothing_happened(w, code_id)
    assert w.json("trust", "show")["services"] == {}


def test_unapproved_compose_hash_gets_no_key(relayed, monkeypatch) -> None:
    w, relay = relayed
    key, code, code_id = _setup(w, relay)
    w.trust_dev_root()
    commands = _commands(relay.url, key, code)
    # nobody approves the first-use hash (no -y, no terminal): exit 9
    _refused(w, relay, commands, 9)
    # a pinned hash that is not the live one is refused the same way
    monkeypatch.setenv("HIVEMIND_TRUST_HASH", "ab" * 32)
    _refused(w, relay, commands, 9)
    monkeypatch.delenv("HIVEMIND_TRUST_HASH")
    _nothing_happened(w, code_id)
    # once approved from a verified quote, the same commands do reach the service (the
    # relay would have seen the keys above)
    w.ok("-y", "trust", "attest", "--service", relay.url)
    for label, argv, secret in commands:
        result = w.run(*argv)
        assert result.exit_code == 0, (label, result.stdout, result.stderr)
        assert relay.carried(secret), label
    names = {t["name"] for t in _admin(f"{w.url}/v1/admin/tenants", sup.ADMIN).json()["tenants"]}
    assert "mallory" in names
    assert w.json("--profile", "carol", "balance")["balance_micro_usd"] == 1_000_000


def test_one_invocation_verifies_its_service_once(relayed) -> None:
    w, relay = relayed
    key, _, _ = _setup(w, relay)
    w.trust_dev_root()
    w.ok("-y", "trust", "attest", "--service", relay.url)
    before = relay.paths().count("GET /v1/attestation")
    w.ok("--profile", "carol", "doctor")  # health and billing: two keyed requests
    calls = relay.paths()
    assert calls.count("GET /v1/attestation") == before + 1
    assert calls.index("GET /v1/health") > len(calls) - 3
    # a changed trust store (dev root removed) means the next command refuses again
    w.ok("trust", "dev-root", "remove", w.server.dev_root())
    gone = w.run("--profile", "carol", "whoami")
    assert gone.exit_code == 9
    assert "no trusted dev attestation root" in gone.stderr
    assert relay.carried(key)[-1] == "GET /v1/billing?limit=1"
