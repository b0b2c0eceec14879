"""Setting up the released peers (ovos-messagebus, hivemind-core 4.0.0) on loopback.

Shared by bench/hub/run.py, conformance/tools/reports.py and the hub's
end-to-end interop tests, which load this file by path. The released
programs run from the interop virtualenv and read their configuration from
the XDG tree of a throwaway HOME: ``ovos-messagebus`` from
``.config/mycroft/mycroft.conf``, ``hivemind-core`` from
``.config/hivemind-core/server.json``. Everything here is stdlib only, so it
works in any of those callers' event loops.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

__all__ = [
    "HOST",
    "free_port",
    "interop_python",
    "reference_hub_config",
    "write_bus_config",
    "write_hub_config",
    "xdg_env",
]

ROOT: Final = Path(__file__).resolve().parents[1]
HOST: Final = "127.0.0.1"


def interop_python() -> Path:
    """The interop virtualenv's python, for scripts.

    ``HIVEMIND_INTEROP_PYTHON`` names it, else ``.cache/interop-venv`` here.

    Raises:
        SystemExit: it is missing.
    """
    default = ROOT / ".cache" / "interop-venv" / "bin" / "python"
    path = Path(os.environ.get("HIVEMIND_INTEROP_PYTHON") or default)
    if not path.exists():
        raise SystemExit(f"interop virtualenv missing ({path}): run `make interop-venv`")
    return path


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def xdg_env(root: Path, **extra: str) -> dict[str, str]:
    """This process's environment with HOME and every XDG directory inside ``root``.

    Args:
        root: The throwaway HOME.
        **extra: More variables to set.

    Returns:
        The environment for a released peer.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env.update(
        HOME=str(root),
        XDG_CONFIG_HOME=str(root / ".config"),
        XDG_DATA_HOME=str(root / ".local/share"),
        XDG_CACHE_HOME=str(root / ".cache"),
        XDG_STATE_HOME=str(root / ".local/state"),
        **extra,
    )
    return env


def write_bus_config(root: Path, port: int) -> None:
    """Configure ``ovos-messagebus`` under HOME ``root`` to listen on ``HOST:port``."""
    conf = root / ".config" / "mycroft"
    conf.mkdir(parents=True)
    websocket = {"host": HOST, "port": port, "route": "/core", "ssl": False}
    (conf / "mycroft.conf").write_text(
        json.dumps({"websocket": {**websocket, "shared_connection": True}})
    )


def write_hub_config(root: Path, tree: dict[str, Any]) -> None:
    """Write ``tree`` as the ``server.json`` a hub started with HOME ``root`` reads."""
    conf = root / ".config" / "hivemind-core"
    conf.mkdir(parents=True)
    (conf / "server.json").write_text(json.dumps(tree))


def reference_hub_config(
    port: int, bus_port: int, data: Path, encodings: Sequence[str]
) -> dict[str, Any]:
    """``server.json`` for hivemind-core 4.0.0 on loopback, its agent the OVOS bus.

    Args:
        port: The hub's websocket port on ``HOST``.
        bus_port: The OVOS message bus port on ``HOST``.
        data: The XDG data directory (its ``hivemind`` folder holds the certificate).
        encodings: The text encodings the hub allows.

    Returns:
        The configuration tree (JSON client database, no binary protocol).
    """
    return {
        "binarize": False,
        "allowed_encodings": list(encodings),
        "allowed_ciphers": ["CHACHA20-POLY1305", "AES-GCM"],
        "agent_protocol": {
            "module": "hivemind-ovos-agent-plugin",
            "hivemind-ovos-agent-plugin": {"host": HOST, "port": bus_port},
        },
        "binary_protocol": {"module": None},
        "network_protocol": {
            "hivemind-websocket-plugin": {
                "host": HOST,
                "port": port,
                "ssl": False,
                "cert_dir": str(data / "hivemind"),
                "cert_name": "hivemind",
            }
        },
        "database": {
            "module": "hivemind-json-db-plugin",
            "hivemind-json-db-plugin": {"name": "clients", "subfolder": "hivemind-core"},
        },
    }
