"""The binary protocol hook: admitted BINARY payloads, dispatched by ``bin_type``.

Plugins come from entry-point group ``hivemind.binary`` (``binary_protocol.module``
in ``server.json``); with no module the hub drops binary payloads. The built-in
``hivemind-file-drop`` plugin stores FILE payloads in a directory, under a
sanitised name: directories are stripped, ``.``/``..``, hidden names, control
characters and empty names are refused, so a satellite can never choose where
a file lands.
"""

from __future__ import annotations

import logging
import os
import unicodedata
from collections.abc import Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Final, Protocol

import trio
from hivemind_proto import BinaryType

__all__ = [
    "BINARY_GROUP",
    "BinaryHandler",
    "FileDropHandler",
    "NullBinaryHandler",
    "load_binary_handler",
    "sanitize_file_name",
]

BINARY_GROUP: Final = "hivemind.binary"
MAX_NAME: Final = 255
log = logging.getLogger("hivemind_hub.binary")


class BinaryHandler(Protocol):
    """A binary protocol plugin."""

    async def handle(
        self, peer: str, bin_type: BinaryType, payload: bytes, metadata: Mapping[str, Any]
    ) -> None:
        """Process one admitted payload."""
        ...


class NullBinaryHandler:
    """No binary plugin: payloads are counted and dropped."""

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self.dropped = 0

    async def handle(
        self, peer: str, bin_type: BinaryType, payload: bytes, metadata: Mapping[str, Any]
    ) -> None:
        """Drop the payload."""
        self.dropped += 1
        log.debug("binary payload type %s dropped (no binary protocol)", int(bin_type))


def sanitize_file_name(name: object) -> str | None:
    """Return a safe base name for a received file, or None if there is none.

    Args:
        name: The ``file_name`` metadata value as received.
    """
    if not isinstance(name, str):
        return None
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if base in ("", ".", "..") or base.startswith("."):
        return None
    if any(unicodedata.category(ch).startswith("C") for ch in base):
        return None
    if len(base.encode("utf-8")) > MAX_NAME:
        return None
    return base


class FileDropHandler:
    """Store FILE payloads in ``directory`` (other types are dropped).

    Args:
        config: ``{"directory": path, "max_bytes": 50 MiB}``.
    """

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        cfg = dict(config or {})
        self.directory = Path(str(cfg.get("directory") or "received")).expanduser()
        self.max_bytes = int(cfg.get("max_bytes", 50 * 1024 * 1024))
        self.saved: list[Path] = []

    async def handle(
        self, peer: str, bin_type: BinaryType, payload: bytes, metadata: Mapping[str, Any]
    ) -> None:
        """Write a FILE payload under its sanitised name."""
        if bin_type is not BinaryType.FILE or len(payload) > self.max_bytes:
            return
        name = sanitize_file_name(metadata.get("file_name"))
        if name is None:
            log.warning("refused a received file with an unsafe name")
            return
        target = self.directory / name
        await trio.to_thread.run_sync(self._write, target, payload)
        self.saved.append(target)

    def _write(self, target: Path, payload: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)


def load_binary_handler(binary_protocol: Mapping[str, Any]) -> BinaryHandler:
    """Build the configured binary plugin (``{"module": NAME, NAME: {...}}``).

    Raises:
        LookupError: no plugin of that name is installed.
    """
    module = binary_protocol.get("module")
    if not module:
        return NullBinaryHandler()
    options = binary_protocol.get(module) or {}
    for ep in entry_points(group=BINARY_GROUP, name=str(module)):
        factory = ep.load()
        handler: BinaryHandler = factory(dict(options))
        return handler
    raise LookupError(f"no binary plugin named {module!r} in group {BINARY_GROUP}")
