"""hmctl checks every downloaded artifact against the signed run attestation (#11).

The real room service runs on 127.0.0.1 port 0 with a query agent that
uploads one artifact. hmctl reaches it through an HTTP relay on loopback
(real sockets) that forwards every request and can change what comes back:
the artifact's bytes, or the run's list of artifacts. The genuine file is
saved; an altered one or an unsigned name ends with the run-attestation exit
code (11) and no file is written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from hivemind_rooms.links import RoomLink

_spec = importlib.util.spec_from_file_location(
    "room_support", Path(__file__).with_name("room_support.py")
)
sup = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sup)
room_env, world, ready = sup.room_env, sup.world, sup.ready

_HOP = frozenset({"connection", "transfer-encoding", "content-length", "keep-alive", "host"})
_MAX_BODY = 1 << 20
REPORT = "report for: q3 numbers"

Rewrite = Callable[[str, bytes], bytes]


class AlteringRelay:
    """An HTTP relay on 127.0.0.1 port 0; ``rewrite(path, body)`` may change answers."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.rewrite: Rewrite = lambda path, body: body
        self.paths: list[str] = []
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                size = min(int(self.headers.get("Content-Length") or 0), _MAX_BODY)
                body = self.rfile.read(size) if size else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                relay.paths.append(f"{self.command} {self.path.split('?')[0]}")
                with httpx.Client(base_url=relay.upstream, timeout=30) as client:
                    answer = client.request(self.command, self.path, headers=headers, content=body)
                content = answer.content
                if answer.status_code == 200:
                    content = relay.rewrite(self.path.split("?")[0], content)
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in _HOP and name.lower() != "content-encoding":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_DELETE = _forward

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> AlteringRelay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def _report_room(w: Any, tmp_path: Path) -> dict[str, Any]:
    agents = tmp_path / "my-agents"
    (agents / "sdk").mkdir(parents=True)
    (agents / "sdk" / "hivemind_agent.py").write_bytes(
        (sup.AGENTS / "sdk" / "hivemind_agent.py").read_bytes()
    )
    report = agents / "report-query"
    report.mkdir()
    (report / "Dockerfile").write_text(
        'FROM hivemind/agent-base:bookworm\nCMD ["python3", "/agent/main.py"]\n'
    )
    (report / "main.py").write_text(
        "from hivemind_agent import Bridge\n"
        "bridge = Bridge()\n"
        "prompt = str(bridge.inputs().get('prompt', ''))\n"
        "bridge.upload_artifact('report.txt', ('report for: ' + prompt).encode())\n"
        "bridge.finish('see report.txt')\n"
    )
    return w.json(
        "--profile", "alice", "-y", "room", "create", str(sup.AGENTS / "default-scope"),
        "--query-agent", str(report), "--no-llm",
    )  # fmt: skip


@pytest.fixture
def relayed(ready: Any, tmp_path: Path) -> Iterator[tuple[Any, AlteringRelay, str]]:
    created = _report_room(ready, tmp_path)
    with AlteringRelay(ready.url) as relay:
        link = RoomLink.parse(created["link"])
        ready.ok("-y", "trust", "attest", "--service", relay.url)
        key = ready.ok(
            "admin", "tenants", "create", "dave", "--service", ready.url,
            "--admin-key", sup.ADMIN, "-q",
        ).stdout.strip()  # fmt: skip
        ready.ok("--profile", "dave", "init", "--service", relay.url, "--api-key", key)
        yield ready, relay, dataclasses.replace(link, service_url=relay.url).format()


def _is_artifact(path: str) -> bool:
    return "/artifacts/" in path


def _ask(w: Any, link: str) -> Any:
    return w.run("--json", "--profile", "dave", "-y", "room", "ask", link, "q3 numbers", "--fetch")


def test_genuine_artifact_is_saved_with_its_signed_hash(relayed) -> None:
    w, relay, link = relayed
    result = _ask(w, link)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    out = json.loads(result.stdout)
    saved = Path(out["fetched"][0]["path"])
    assert saved.read_text() == REPORT
    assert f"GET /v1/runs/{out['run_id']}/artifacts/report.txt" in relay.paths


def test_altered_artifact_bytes_are_refused_and_not_written(relayed, tmp_path: Path) -> None:
    w, relay, link = relayed
    # same size, one byte different: only the signed hash can tell
    relay.rewrite = lambda path, body: body.replace(b"q3", b"q4") if _is_artifact(path) else body
    result = _ask(w, link)
    assert result.exit_code == 11, (result.stdout, result.stderr)
    assert "artifact 'report.txt' does not match the signed run attestation" in result.stderr
    assert [p for p in relay.paths if _is_artifact(p)]  # it was downloaded, then refused
    assert not list(Path("hivemind-artifacts").rglob("report.txt"))
    # `runs artifacts --fetch` checks the same records
    run_id = next(p for p in relay.paths if _is_artifact(p)).split("/")[3]
    again = w.run(
        "--profile",
        "dave",
        "runs",
        "artifacts",
        run_id,
        "--room",
        link,
        "--fetch",
        str(tmp_path / "copy"),
    )
    assert again.exit_code == 11, (again.stdout, again.stderr)
    assert not (tmp_path / "copy" / run_id / "report.txt").exists()
    relay.rewrite = lambda path, body: body
    fine = w.run(
        "--profile",
        "dave",
        "runs",
        "artifacts",
        run_id,
        "--room",
        link,
        "--fetch",
        str(tmp_path / "copy"),
    )
    assert fine.exit_code == 0, (fine.stdout, fine.stderr)
    assert (tmp_path / "copy" / run_id / "report.txt").read_text() == REPORT


def test_an_unsigned_artifact_name_is_refused_before_download(relayed) -> None:
    w, relay, link = relayed

    def add_name(path: str, body: bytes) -> bytes:
        if path.startswith("/v1/runs/") and path.count("/") == 3:
            run = json.loads(body)
            if run.get("status") == "completed":
                run["artifacts"] = [*run.get("artifacts", []), "extra.txt"]
            return json.dumps(run).encode()
        return body

    relay.rewrite = add_name
    result = _ask(w, link)
    assert result.exit_code == 11, (result.stdout, result.stderr)
    assert "artifact 'extra.txt' does not match the signed run attestation" in result.stderr
    assert [p for p in relay.paths if _is_artifact(p)] == []
    assert not Path("hivemind-artifacts").exists()


def test_signed_records_match_the_bytes_the_service_stored(relayed) -> None:
    w, _, link = relayed
    out = json.loads(_ask(w, link).stdout)
    run = httpx.get(
        f"{w.url}/v1/runs/{out['run_id']}",
        headers={"Authorization": f"Bearer {RoomLink.parse(link).token}"},
        timeout=30,
    ).json()
    assert run["attestation"]["body"]["artifacts"] == [
        {
            "name": "report.txt",
            "sha256": hashlib.sha256(REPORT.encode()).hexdigest(),
            "size": len(REPORT),
        }
    ]


def test_runs_artifacts_refuses_records_the_run_signer_did_not_sign(relayed, tmp_path) -> None:
    """A relay rewriting both the file and its signed record is caught by the signature."""
    w, relay, link = relayed
    asked = _ask(w, link)
    assert asked.exit_code == 0, (asked.stdout, asked.stderr)
    run_id = json.loads(asked.stdout)["run_id"]
    forged = b"forged report"

    def rewrite_both(path: str, body: bytes) -> bytes:
        if _is_artifact(path):
            return forged
        if path == f"/v1/runs/{run_id}":
            run = json.loads(body)
            run["attestation"]["body"]["artifacts"] = [
                {"name": "report.txt", "sha256": hashlib.sha256(forged).hexdigest(),
                 "size": len(forged)}
            ]  # fmt: skip
            return json.dumps(run).encode()
        return body

    relay.rewrite = rewrite_both
    fetched = w.run(
        "--profile", "dave", "runs", "artifacts", run_id, "--room", link,
        "--fetch", str(tmp_path / "copy"),
    )  # fmt: skip
    assert fetched.exit_code == 11, (fetched.stdout, fetched.stderr)
    assert "run attestation check failed: signature" in fetched.stderr
    assert not (tmp_path / "copy" / run_id / "report.txt").exists()
