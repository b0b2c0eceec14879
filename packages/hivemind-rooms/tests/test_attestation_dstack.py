"""The dstack provider.

The dstack guest agent only exists inside a dstack confidential VM, which no
machine here can reach. These tests therefore check the real failure paths
(no socket, nothing listening) and, for the mapping of the agent's answers,
use ``GuestAgentDouble``: a test double speaking the agent's HTTP-over-Unix-
socket RPC (``POST /Info``, ``/GetQuote``, ``/GetKey``) on a temporary socket.
"""

from __future__ import annotations

import json
import os
import socket
import socketserver
import tempfile
import threading
from http.server import BaseHTTPRequestHandler

import pytest
from hivemind_rooms.attestation import AttestationUnavailable, DstackProvider
from hivemind_rooms.attestation.eventlog import make_event, replay_rtmr3

EVENTS = [make_event("compose-hash", b"\x11" * 32)]
KMS_KEY = bytes(range(32))


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output quiet
        pass

    def address_string(self):
        return "unix"

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.calls.append((self.path, body))
        if self.path == "/Info":
            tcb = {
                "mrtd": "aa" * 48, "rtmr0": "00" * 48, "rtmr1": "01" * 48, "rtmr2": "02" * 48,
                "rtmr3": replay_rtmr3(EVENTS).hex(), "app_compose": '{"name":"x"}',
                "event_log": EVENTS, "mr_aggregated": "", "os_image_hash": "",
                "compose_hash": "11" * 32, "device_id": "",
            }  # fmt: skip
            answer = {
                "app_id": "cd" * 20, "instance_id": "ef" * 20, "app_cert": "", "app_name": "x",
                "device_id": "", "key_provider_info": "", "compose_hash": "11" * 32,
                "tcb_info": json.dumps(tcb),
            }  # fmt: skip
        elif self.path == "/GetQuote":
            answer = {"quote": "04" + body["report_data"], "event_log": json.dumps(EVENTS)}
        elif self.path == "/GetKey":
            answer = {"key": KMS_KEY.hex(), "signature_chain": []}
        else:
            self.send_error(404)
            return
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class GuestAgentDouble(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """Test double of the dstack guest agent on a Unix socket."""

    daemon_threads = True

    def __init__(self, path):
        super().__init__(path, _Handler)
        self.calls = []


@pytest.fixture
def agent():
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "dstack.sock")
        server = GuestAgentDouble(path)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        thread.start()
        try:
            yield server, path
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


@pytest.fixture(autouse=True)
def no_simulator(monkeypatch):
    monkeypatch.delenv("DSTACK_SIMULATOR_ENDPOINT", raising=False)


def test_missing_socket_is_unavailable(tmp_path):
    with pytest.raises(AttestationUnavailable, match="not reachable"):
        DstackProvider(str(tmp_path / "absent.sock"))


@pytest.mark.skipif(
    any(os.path.exists(p) for p in ("/var/run/dstack.sock", "/run/dstack.sock")),
    reason="a real dstack guest agent socket exists on this machine",
)
def test_default_discovery_without_agent_is_unavailable():
    with pytest.raises(AttestationUnavailable):
        DstackProvider()


def closed_loopback_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_nothing_listening_makes_every_call_unavailable():
    p = DstackProvider(f"http://127.0.0.1:{closed_loopback_port()}", timeout=2)
    with pytest.raises(AttestationUnavailable):
        p.info()
    with pytest.raises(AttestationUnavailable):
        p.quote(bytes(64))
    with pytest.raises(AttestationUnavailable):
        p.derive_key("x")


def test_maps_guest_agent_answers(agent):
    server, path = agent
    p = DstackProvider(path, timeout=5)
    assert p.kind == "dstack"
    info = p.info()
    assert info.compose_hash == "11" * 32
    assert info.app_id == "cd" * 20
    assert info.measurements["rtmr3"] == replay_rtmr3(EVENTS).hex()
    q = p.quote(bytes(range(64)))
    assert q.quote == b"\x04" + bytes(range(64))
    assert json.loads(q.event_log) == EVENTS
    assert ("/GetQuote", {"report_data": bytes(range(64)).hex()}) in server.calls
    k1, k2 = p.derive_key("a"), p.derive_key("b")
    assert len(k1) == 32
    assert k1 != k2
    assert KMS_KEY not in k1
    with pytest.raises(ValueError):
        p.quote(bytes(63))
