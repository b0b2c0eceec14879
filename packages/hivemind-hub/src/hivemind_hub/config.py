"""Hub configuration: ``$XDG_CONFIG_HOME/hivemind-core/server.json``.

Theory of operation
-------------------
The file keeps the upstream layout so that an existing ``server.json`` loads
unchanged, and a file we write is still readable by the upstream hub. Loading
deep-merges the file over :func:`default_config_dict` (a key present in the
file always wins, so an upstream config binding ``0.0.0.0`` keeps doing so),
then validates the merged tree into frozen dataclasses. Every validation
error names the key path at fault.

Fresh installs differ from upstream in two places, both only in the file we
write on first run: the websocket listener binds ``127.0.0.1`` and the
database is SQLite unless a legacy ``clients.json`` exists without a
``clients.db`` (then JSON stays, so upgrades never strand credentials).

Our own keys live under ``limits`` (handshake timeout, frame size, rate limit,
connections per credential, outbound queue size).
"""

from __future__ import annotations

import copy
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from ._errors import ConfigError

__all__ = [
    "BACKEND_MODULES",
    "DEFAULT_ENCODINGS",
    "DatabaseConfig",
    "HubConfig",
    "LimitsConfig",
    "ListenConfig",
    "PolicyEntry",
    "UpstreamConfig",
    "config_dir",
    "config_path",
    "data_dir",
    "default_config_dict",
    "load_config",
    "parse_config",
    "write_config",
]

APP_DIR: Final = "hivemind-core"
WEBSOCKET_PLUGIN: Final = "hivemind-websocket-plugin"
HTTP_PLUGIN: Final = "hivemind-http-plugin"

#: Short backend name -> upstream database plugin name.
BACKEND_MODULES: Final[Mapping[str, str]] = {
    "json": "hivemind-json-db-plugin",
    "sqlite": "hivemind-sqlite-db-plugin",
    "redis": "hivemind-redis-db-plugin",
}

DEFAULT_ENCODINGS: Final = (
    "JSON-B64",
    "JSON-URLSAFE-B64",
    "JSON-B91",
    "JSON-Z85B",
    "JSON-Z85P",
    "JSON-B32",
    "JSON-HEX",
)
DEFAULT_CIPHERS: Final = ("CHACHA20-POLY1305", "AES-GCM")


def config_dir() -> Path:
    """Return ``$XDG_CONFIG_HOME/hivemind-core`` (``~/.config`` when unset)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / APP_DIR


def config_path() -> Path:
    """Return the path of ``server.json``."""
    return config_dir() / "server.json"


def data_dir() -> Path:
    """Return ``$XDG_DATA_HOME/hivemind-core`` (``~/.local/share`` when unset)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / APP_DIR


def _default_db_module(data: Path) -> str:
    if (data / "clients.json").exists() and not (data / "clients.db").exists():
        return BACKEND_MODULES["json"]
    return BACKEND_MODULES["sqlite"]


def default_config_dict(data: Path | None = None) -> dict[str, Any]:
    """Return the configuration a fresh install writes.

    Args:
        data: The data directory inspected to pick the default database
            (defaults to :func:`data_dir`).

    Returns:
        A new, mutable ``server.json`` tree.
    """
    db_module = _default_db_module(data if data is not None else data_dir())
    return {
        "agent_protocol": {
            "module": "hivemind-ovos-agent-plugin",
            "hivemind-ovos-agent-plugin": {"host": "127.0.0.1", "port": 8181},
        },
        "binary_protocol": {"module": None},
        "network_protocol": {
            WEBSOCKET_PLUGIN: {
                "host": "127.0.0.1",
                "port": 5678,
                "ssl": False,
                "cert_dir": "~/.local/share/hivemind",
                "cert_name": "hivemind",
            },
        },
        "database": {
            "module": db_module,
            db_module: {"name": "clients", "subfolder": APP_DIR},
        },
        "policy": {"chain": [{"module": "hivemind-ovos-agent-policy"}]},
        "allowed_encodings": list(DEFAULT_ENCODINGS),
        "allowed_ciphers": list(DEFAULT_CIPHERS),
        "binarize": False,
        "min_protocol_version": 1,
        "min_password_bits": 40,
        "runtime_password_strength_check": True,
        "ping_flood_interval": 30,
        "last_seen_update_interval": 60,
        "upstream": {
            "enabled": False,
            "host": None,
            "port": 5678,
            "key": None,
            "password": None,
            "ssl": False,
            "self_signed": False,
        },
        "utterance_transformers": {},
        "metadata_transformers": {},
        "dialog_transformers": {},
        "limits": {
            "handshake_timeout": 10.0,
            "max_frame_bytes": 10 * 1024 * 1024,
            "rate_limit_messages_per_second": 20.0,
            "rate_limit_burst": 60,
            "max_connections_per_credential": 8,
            "outbound_queue_size": 64,
        },
    }


@dataclass(frozen=True)
class ListenConfig:
    """Where the websocket listener binds (``network_protocol.hivemind-websocket-plugin``)."""

    host: str = "127.0.0.1"
    port: int = 5678
    ssl: bool = False
    cert_dir: str = "~/.local/share/hivemind"
    cert_name: str = "hivemind"


@dataclass(frozen=True)
class LimitsConfig:
    """Resource bounds applied per connection and per credential (our keys)."""

    handshake_timeout: float = 10.0
    max_frame_bytes: int = 10 * 1024 * 1024
    rate_limit_messages_per_second: float = 20.0
    rate_limit_burst: int = 60
    max_connections_per_credential: int = 8
    outbound_queue_size: int = 64
    slow_consumer: str = "close"


@dataclass(frozen=True)
class DatabaseConfig:
    """The client database: upstream plugin name plus its option block."""

    module: str
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def backend(self) -> str:
        """The short backend name: ``json``, ``sqlite`` or ``redis``."""
        for short, module in BACKEND_MODULES.items():
            if module == self.module:
                return short
        raise ConfigError(f"database.module: unsupported database {self.module!r}")


@dataclass(frozen=True)
class PolicyEntry:
    """One configured policy plugin (``policy.chain[i]``)."""

    module: str
    config: Mapping[str, Any] = field(default_factory=dict)
    optional: bool = False


@dataclass(frozen=True)
class UpstreamConfig:
    """The optional link to a parent hub."""

    enabled: bool = False
    host: str | None = None
    port: int = 5678
    key: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    ssl: bool = False
    self_signed: bool = False
    require_noise: bool = False


@dataclass(frozen=True)
class HubConfig:
    """The validated hub configuration.

    Attributes:
        raw: The merged ``server.json`` tree (defaults plus file), as loaded.
        path: The file it was loaded from, if any.
    """

    listen: ListenConfig
    limits: LimitsConfig
    database: DatabaseConfig
    policy_chain: tuple[PolicyEntry, ...]
    agent_protocol: Mapping[str, Any]
    binary_protocol: Mapping[str, Any]
    network_protocol: Mapping[str, Any]
    allowed_encodings: tuple[str, ...]
    allowed_ciphers: tuple[str, ...]
    binarize: bool
    min_protocol_version: int
    min_password_bits: int
    runtime_password_strength_check: bool
    ping_flood_interval: float
    last_seen_update_interval: float
    upstream: UpstreamConfig
    raw: Mapping[str, Any] = field(repr=False)
    path: Path | None = None


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class _Reader:
    """Typed accessors over a config tree that name the key path on error."""

    def __init__(self, tree: Mapping[str, Any], prefix: str = "") -> None:
        self._tree = tree
        self._prefix = prefix

    def path(self, key: str) -> str:
        return f"{self._prefix}{key}"

    def sub(self, key: str) -> _Reader:
        value = self._tree.get(key, {})
        if not isinstance(value, Mapping):
            raise ConfigError(f"{self.path(key)}: expected an object")
        return _Reader(value, f"{self.path(key)}.")

    def mapping(self, key: str) -> dict[str, Any]:
        value = self._tree.get(key, {})
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise ConfigError(f"{self.path(key)}: expected an object")
        return dict(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self._tree.get(key, default)
        if not isinstance(value, bool):
            raise ConfigError(f"{self.path(key)}: expected true or false, got {value!r}")
        return value

    def integer(self, key: str, default: int, minimum: int = 0) -> int:
        value = self._tree.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(f"{self.path(key)}: expected an integer >= {minimum}, got {value!r}")
        return value

    def number(self, key: str, default: float, positive: bool = True) -> float:
        value = self._tree.get(key, default)
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or not math.isfinite(value) or (positive and value <= 0):
            raise ConfigError(f"{self.path(key)}: expected a positive number, got {value!r}")
        return float(value)

    def string(self, key: str, default: str | None, optional: bool = False) -> str | None:
        value = self._tree.get(key, default)
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{self.path(key)}: expected a non-empty string, got {value!r}")
        return value

    def strings(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self._tree.get(key, list(default))
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{self.path(key)}: expected a list of strings")
        return tuple(value)


def _parse_listen(root: _Reader) -> ListenConfig:
    ws = root.sub("network_protocol").sub(WEBSOCKET_PLUGIN)
    port = ws.integer("port", 5678)
    if port > 65535:
        raise ConfigError(f"{ws.path('port')}: expected a port number 0-65535, got {port}")
    return ListenConfig(
        host=ws.string("host", "127.0.0.1") or "127.0.0.1",
        port=port,
        ssl=ws.boolean("ssl", False),
        cert_dir=ws.string("cert_dir", "~/.local/share/hivemind") or "",
        cert_name=ws.string("cert_name", "hivemind") or "",
    )


def _parse_limits(root: _Reader) -> LimitsConfig:
    lim = root.sub("limits")
    return LimitsConfig(
        handshake_timeout=lim.number("handshake_timeout", 10.0),
        max_frame_bytes=lim.integer("max_frame_bytes", 10 * 1024 * 1024, minimum=1024),
        rate_limit_messages_per_second=lim.number("rate_limit_messages_per_second", 20.0),
        rate_limit_burst=lim.integer("rate_limit_burst", 60, minimum=1),
        max_connections_per_credential=lim.integer("max_connections_per_credential", 8, 1),
        outbound_queue_size=lim.integer("outbound_queue_size", 64, minimum=1),
        slow_consumer=_slow_consumer(lim),
    )


def _slow_consumer(lim: _Reader) -> str:
    value = lim.string("slow_consumer", "close") or "close"
    if value not in ("close", "drop"):
        raise ConfigError(f"{lim.path('slow_consumer')}: expected 'close' or 'drop', got {value!r}")
    return value


def _parse_database(root: _Reader) -> DatabaseConfig:
    db = root.sub("database")
    module = db.string("module", BACKEND_MODULES["sqlite"]) or ""
    if module not in BACKEND_MODULES.values():
        names = ", ".join(BACKEND_MODULES.values())
        raise ConfigError(f"database.module: unsupported database {module!r} (use one of {names})")
    return DatabaseConfig(module=module, options=db.mapping(module))


def _parse_policy(root: _Reader) -> tuple[PolicyEntry, ...]:
    policy = root.sub("policy")
    chain = policy._tree.get("chain", [])
    if not isinstance(chain, list):
        raise ConfigError("policy.chain: expected a list")
    entries = []
    for index, item in enumerate(chain):
        where = f"policy.chain[{index}]"
        if isinstance(item, str):
            item = {"module": item}
        if not isinstance(item, Mapping):
            raise ConfigError(f"{where}: expected an object with a 'module' key")
        entry = _Reader(item, f"{where}.")
        entries.append(
            PolicyEntry(
                module=entry.string("module", None) or "",
                config=entry.mapping("config"),
                optional=entry.boolean("optional", False),
            )
        )
    return tuple(entries)


def _parse_upstream(root: _Reader) -> UpstreamConfig:
    up = root.sub("upstream")
    return UpstreamConfig(
        enabled=up.boolean("enabled", False),
        host=up.string("host", None, optional=True),
        port=up.integer("port", 5678),
        key=up.string("key", None, optional=True),
        password=up.string("password", None, optional=True),
        ssl=up.boolean("ssl", False),
        self_signed=up.boolean("self_signed", False),
        require_noise=up.boolean("require_noise", False),
    )


def parse_config(tree: Mapping[str, Any], path: Path | None = None) -> HubConfig:
    """Validate a merged ``server.json`` tree.

    Args:
        tree: The configuration (already merged over the defaults).
        path: Where it came from, kept for messages.

    Returns:
        The typed configuration.

    Raises:
        ConfigError: A key holds an invalid value; the message names it.
    """
    root = _Reader(tree)
    return HubConfig(
        listen=_parse_listen(root),
        limits=_parse_limits(root),
        database=_parse_database(root),
        policy_chain=_parse_policy(root),
        agent_protocol=root.mapping("agent_protocol"),
        binary_protocol=root.mapping("binary_protocol"),
        network_protocol=root.mapping("network_protocol"),
        allowed_encodings=root.strings("allowed_encodings", DEFAULT_ENCODINGS),
        allowed_ciphers=root.strings("allowed_ciphers", DEFAULT_CIPHERS),
        binarize=root.boolean("binarize", False),
        min_protocol_version=root.integer("min_protocol_version", 1),
        min_password_bits=root.integer("min_password_bits", 40),
        runtime_password_strength_check=root.boolean("runtime_password_strength_check", True),
        ping_flood_interval=root.number("ping_flood_interval", 30),
        last_seen_update_interval=root.number("last_seen_update_interval", 60),
        upstream=_parse_upstream(root),
        raw=copy.deepcopy(dict(tree)),
        path=path,
    )


def write_config(tree: Mapping[str, Any], path: Path | None = None) -> Path:
    """Write a configuration tree atomically (temporary file, then rename).

    Args:
        tree: The ``server.json`` content.
        path: Destination, defaults to :func:`config_path`.

    Returns:
        The path written.
    """
    target = path or config_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(tree, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    return target


def load_config(path: Path | None = None, *, create: bool = True) -> HubConfig:
    """Load ``server.json`` merged over the defaults, writing it first if missing.

    Args:
        path: The file to read, defaults to :func:`config_path`.
        create: Write the default file when it does not exist.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: The file is unreadable, not a JSON object, or invalid.
    """
    target = path or config_path()
    defaults = default_config_dict()
    if not target.exists():
        if create:
            write_config(defaults, target)
        return parse_config(defaults, target)
    try:
        loaded = json.loads(target.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{target}: cannot read the file ({exc.__class__.__name__})") from exc
    except ValueError as exc:
        raise ConfigError(f"{target}: not valid JSON ({exc})") from exc
    if not isinstance(loaded, Mapping):
        raise ConfigError(f"{target}: expected a JSON object at the top level")
    return parse_config(_deep_merge(defaults, loaded), target)
