"""The sans-IO core stays sans-IO, and the public API stays what it is."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import hivemind_proto

SRC = Path(hivemind_proto.__file__).parent
#: Modules the core must never import: I/O, event loops, clocks, global RNGs.
FORBIDDEN = {
    "trio",
    "trio_websocket",
    "asyncio",
    "socket",
    "ssl",
    "selectors",
    "threading",
    "time",
    "random",
    "secrets",
    "os",
    "datetime",
    "logging",
}


def core_modules() -> list[Path]:
    return [p for p in SRC.rglob("*.py") if "trio" not in p.relative_to(SRC).parts]


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_core_source_imports_no_io_clock_or_rng() -> None:
    offenders = {
        str(p.relative_to(SRC)): sorted(imported_roots(p) & FORBIDDEN) for p in core_modules()
    }
    assert {k: v for k, v in offenders.items() if v} == {}
    assert len(core_modules()) > 15  # the scan really looked at the package


def test_importing_the_core_loads_no_trio_asyncio_or_socket() -> None:
    code = (
        "import sys, json, hivemind_proto, hivemind_proto.hazmat;"
        "print(json.dumps(sorted(m for m in ('trio', 'asyncio', 'socket', 'trio_websocket')"
        " if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_importing_the_trio_adapter_does_load_trio() -> None:
    """Guards the test above against passing vacuously."""
    code = "import sys, hivemind_proto.trio; print('trio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_public_api_snapshot() -> None:
    assert sorted(hivemind_proto.__all__) == sorted(
        [
            "Authorization",
            "BinaryType",
            "Cipher",
            "CloseCode",
            "CodecError",
            "Compression",
            "Connection",
            "ConnectionClosed",
            "DecryptionError",
            "Event",
            "Frame",
            "HandshakeComplete",
            "HelloReceived",
            "HiveMessage",
            "HiveWebSocket",
            "HubSettings",
            "LocalProtocolError",
            "MessageReceived",
            "MessageType",
            "NoiseIdentity",
            "NoisePattern",
            "NoisePublicKey",
            "NoiseSuite",
            "PayloadMarker",
            "Profile",
            "ProtocolError",
            "RemoteProtocolError",
            "Role",
            "RouteHop",
            "SatelliteSettings",
            "State",
            "StaticKeypair",
            "TextEncoding",
            "authorization_from_target",
            "build_authorization",
            "bus_message",
            "canonical_json",
            "decode_json",
            "decode_msgpack",
            "decode_wire1",
            "derive_psk",
            "encode_json",
            "encode_msgpack",
            "encode_wire1",
            "noise_prologue",
            "parse_authorization",
        ]
    )
    for name in hivemind_proto.__all__:
        assert getattr(hivemind_proto, name) is not None


def test_public_symbols_have_docstrings() -> None:
    missing = [
        name
        for name in hivemind_proto.__all__
        if callable(getattr(hivemind_proto, name))
        and not isinstance(getattr(hivemind_proto, name), type(hivemind_proto.Frame))
        and not (getattr(hivemind_proto, name).__doc__ or "").strip()
    ]
    assert missing == []
