"""Agent uploads: archive checks, stored files, digests and the inspection view.

Theory of operation. An agent arrives as a gzip tar of a directory with a
``Dockerfile`` at its root. The archive is read entirely in memory, never
extracted to disk, and refused as a whole (nothing stored) when any member is
unsafe: absolute paths, ``..`` components, symbolic or hard links, device
files, FIFOs, duplicate paths, or when a size or count limit is crossed.
Member sizes come from the tar headers and are checked before any content is
read, so a decompression bomb is stopped by the limits, not by memory.

Files are stored as bytes. For ``sealed`` agents the caller supplies a sealer
(the tenant or room seal) and only ciphertext reaches the database; the files
API never serves sealed content. Digests are computed over the plaintext:
``SHA-256`` over ``path NUL content NUL`` for every file in path order
(``files_digest``) and for files not listed in ``private_paths``
(``attested_files_digest``).
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import posixpath
import tarfile
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, final

from . import credentials
from .storage import TenantStoreProtocol

__all__ = [
    "AGENT_TYPES",
    "INSPECTION_MODES",
    "AgentArchive",
    "AgentError",
    "AgentSpec",
    "agent_attestation",
    "agent_config",
    "agent_file_content",
    "agent_files_view",
    "files_digest",
    "read_archive",
    "register_agent",
]

AGENT_TYPES: Final = ("scope", "query", "mediator")
INSPECTION_MODES: Final = ("full", "sealed")
MAX_MEMBERS: Final = 2000
MAX_MEMBER_BYTES: Final = 15 * 1024 * 1024
MAX_TOTAL_BYTES: Final = 150 * 1024 * 1024

Sealer = Callable[[str, str, bytes], bytes]
"""Encrypts one file: ``sealer(agent_id, path, content) -> ciphertext``."""


class AgentError(Exception):
    """An agent upload or lookup is refused; ``status`` is the HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@final
@dataclasses.dataclass(frozen=True)
class AgentArchive:
    """A checked archive: ``files`` maps normalised paths to (content, mode)."""

    files: Mapping[str, tuple[bytes, int]]
    sha256: str


def _bad(message: str) -> AgentError:
    return AgentError(400, f"invalid agent archive: {message}")


def _member_path(member: tarfile.TarInfo) -> str:
    name = member.name
    if "\x00" in name or "\\" in name:
        raise _bad(f"member {name!r} has a forbidden character")
    if name.startswith("/") or posixpath.isabs(name):
        raise _bad(f"member {name!r} has an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _bad(f"member {name!r} escapes the archive root")
    return "/".join(parts)


def _check_kind(member: tarfile.TarInfo) -> None:
    if member.issym() or member.islnk():
        raise _bad(f"member {member.name!r} is a link (links are not accepted)")
    if member.isdev() or member.isfifo() or not (member.isfile() or member.isdir()):
        raise _bad(f"member {member.name!r} is not a regular file or directory")


def read_archive(data: bytes, *, max_archive_bytes: int) -> AgentArchive:
    """Check and read a ``.tar.gz`` agent archive in memory.

    Args:
        data: The compressed archive.
        max_archive_bytes: Largest accepted compressed size.

    Returns:
        The files of the archive.

    Raises:
        AgentError: the archive is too large, malformed, unsafe, or has no Dockerfile (400,
            413 for size).
    """
    if len(data) > max_archive_bytes:
        raise AgentError(413, f"agent archive exceeds {max_archive_bytes} bytes")
    if not data.startswith(b"\x1f\x8b"):
        raise _bad("not a gzip-compressed tar file")
    files: dict[str, tuple[bytes, int]] = {}
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for count, member in enumerate(tar, start=1):
                if count > MAX_MEMBERS:
                    raise _bad(f"more than {MAX_MEMBERS} members")
                path = _member_path(member)
                _check_kind(member)
                if member.isdir() or not path:
                    continue
                if path in files:
                    raise _bad(f"member {path!r} appears twice")
                if member.size > MAX_MEMBER_BYTES:
                    raise _bad(f"member {path!r} exceeds {MAX_MEMBER_BYTES} bytes")
                total += member.size
                if total > MAX_TOTAL_BYTES:
                    raise _bad(f"extracted size exceeds {MAX_TOTAL_BYTES} bytes")
                handle = tar.extractfile(member)
                content = handle.read() if handle is not None else b""
                files[path] = (content, (member.mode & 0o777) or 0o644)
    except (tarfile.TarError, EOFError, OSError, zlib.error, gzip.BadGzipFile) as exc:
        raise _bad(f"unreadable tar.gz ({type(exc).__name__})") from None
    if not files:
        raise _bad("the archive holds no files")
    if "Dockerfile" not in files:
        raise _bad("a Dockerfile is required at the archive root")
    return AgentArchive(files=files, sha256=hashlib.sha256(data).hexdigest())


def files_digest(files: Iterable[tuple[str, bytes]]) -> str:
    """Digest of files: SHA-256 over ``path NUL content NUL`` in path order."""
    digest = hashlib.sha256()
    for path, content in sorted(files):
        digest.update(path.encode("utf-8") + b"\x00" + content + b"\x00")
    return digest.hexdigest()


def _int_field(fields: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    raw = fields.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(str(raw).strip(), 10)
    except ValueError:
        raise AgentError(400, f"{name} must be an integer") from None
    if not low <= value <= high:
        raise AgentError(400, f"{name} must be between {low} and {high}")
    return value


def _norm_private(path: str) -> str:
    path = path.strip()
    return path[2:] if path.startswith("./") else path


@final
@dataclasses.dataclass(frozen=True)
class AgentSpec:
    """Validated registration fields of an agent upload."""

    name: str
    description: str = ""
    agent_type: str = "query"
    entrypoint: str | None = None
    memory_mb: int = 256
    max_llm_calls: int = 20
    max_tokens: int = 100_000
    timeout_seconds: int = 120
    inspection_mode: str = "full"
    private_paths: tuple[str, ...] = ()

    @classmethod
    def from_form(cls, fields: Mapping[str, Any], *, memory_cap_mb: int = 4096) -> AgentSpec:
        """Validate multipart form fields (all strings).

        Raises:
            AgentError: a field is missing or invalid (400).
        """
        name = str(fields.get("name") or "").strip()
        if not name or len(name) > 200:
            raise AgentError(400, "name is required (at most 200 characters)")
        agent_type = str(fields.get("agent_type") or "query")
        if agent_type not in AGENT_TYPES:
            raise AgentError(400, f"agent_type must be one of {', '.join(AGENT_TYPES)}")
        mode = str(fields.get("inspection_mode") or "full")
        if mode not in INSPECTION_MODES:
            raise AgentError(400, "inspection_mode must be 'full' or 'sealed'")
        try:
            private = json.loads(str(fields.get("private_paths") or "[]"))
        except ValueError:
            raise AgentError(400, "private_paths must be a JSON list of paths") from None
        if not isinstance(private, list) or not all(isinstance(p, str) for p in private):
            raise AgentError(400, "private_paths must be a JSON list of paths")
        entrypoint = str(fields.get("entrypoint") or "").strip() or None
        return cls(
            name=name,
            description=str(fields.get("description") or "")[:2000],
            agent_type=agent_type,
            entrypoint=entrypoint,
            memory_mb=_int_field(fields, "memory_mb", 256, 16, memory_cap_mb),
            max_llm_calls=_int_field(fields, "max_llm_calls", 20, 1, 10_000),
            max_tokens=_int_field(fields, "max_tokens", 100_000, 1, 100_000_000),
            timeout_seconds=_int_field(fields, "timeout_seconds", 120, 1, 86_400),
            inspection_mode=mode,
            private_paths=tuple(_norm_private(p) for p in private),
        )


def register_agent(
    store: TenantStoreProtocol,
    tenant_id: str,
    spec: AgentSpec,
    archive: AgentArchive,
    *,
    sealer: Sealer | None = None,
    seal_mode: str = "tenant",
    room_id: str | None = None,
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """Store a checked agent and its files (ciphertext only when sealed).

    Args:
        store: The tenant database.
        tenant_id: The owning tenant.
        spec: Validated registration fields.
        archive: The checked archive.
        sealer: Encrypts file content; required for sealed agents.
        seal_mode: ``tenant`` or ``room`` (which key the sealer uses).
        room_id: Room of a room-sealed upload.
        clock: Returns the current Unix time.

    Returns:
        The stored agent row.

    Raises:
        AgentError: sealed without a sealer (503), unknown private path (400).
    """
    unknown = [p for p in spec.private_paths if p not in archive.files]
    if unknown:
        raise AgentError(400, f"private_paths names files not in the archive: {unknown[:5]}")
    sealed = spec.inspection_mode == "sealed"
    if sealed and sealer is None:
        raise AgentError(503, "tenant is sealed: the owner must authenticate before sealed uploads")
    agent_id = credentials.new_agent_id()
    plain = [(path, content) for path, (content, _) in archive.files.items()]
    attested = [(p, c) for p, c in plain if p not in spec.private_paths]
    row = {
        "agent_id": agent_id,
        "name": spec.name,
        "description": spec.description,
        "agent_type": spec.agent_type,
        "image": f"hivemind-agent-{tenant_id}-{agent_id}:latest",
        "entrypoint": spec.entrypoint,
        "memory_mb": spec.memory_mb,
        "max_llm_calls": spec.max_llm_calls,
        "max_tokens": spec.max_tokens,
        "timeout_seconds": spec.timeout_seconds,
        "inspection_mode": spec.inspection_mode,
        "room_id": room_id,
        "archive_sha256": archive.sha256,
        "files_digest": files_digest(plain),
        "attested_files_digest": files_digest(attested),
        "created_at": clock(),
    }
    files = []
    for path, (content, mode) in sorted(archive.files.items()):
        sealed_bytes = sealer(agent_id, path, content) if sealed and sealer is not None else None
        files.append(
            {
                "file_path": path,
                "content": None if sealed else content,
                "ciphertext": sealed_bytes,
                "seal_mode": seal_mode if sealed else "",
                "room_id": room_id if sealed and seal_mode == "room" else None,
                "size_bytes": len(content),
                "mode": mode,
                "attestable": int(path not in spec.private_paths),
            }
        )
    store.insert_agent(row, files)
    return row


_CONFIG_KEYS: Final = (
    "agent_id",
    "name",
    "description",
    "agent_type",
    "image",
    "entrypoint",
    "memory_mb",
    "max_llm_calls",
    "max_tokens",
    "timeout_seconds",
    "inspection_mode",
    "harness",
)


def agent_config(row: Mapping[str, Any]) -> dict[str, Any]:
    """The public ``AgentConfig`` view of an agent row."""
    return {k: row[k] for k in _CONFIG_KEYS}


def agent_files_view(store: TenantStoreProtocol, agent_id: str) -> list[dict[str, Any]]:
    """The file list (paths, sizes, attestable flags) served for any agent."""
    return [
        {"path": r["file_path"], "size_bytes": r["size_bytes"], "attestable": bool(r["attestable"])}
        for r in store.agent_files(agent_id)
    ]


def agent_file_content(store: TenantStoreProtocol, agent: Mapping[str, Any], path: str) -> bytes:
    """Return the plaintext of one inspectable agent file.

    Raises:
        AgentError: the agent is sealed (403) or the file is unknown (404).
    """
    if agent["inspection_mode"] == "sealed":
        raise AgentError(403, "agent source is sealed")
    row = store.agent_file(agent["agent_id"], path)
    if row is None or row["content"] is None:
        raise AgentError(404, "file not found")
    return bytes(row["content"])


def agent_attestation(store: TenantStoreProtocol, agent: Mapping[str, Any]) -> dict[str, Any]:
    """The agent part of ``GET /v1/room-agents/{id}/attest`` (without the bundle)."""
    files = store.agent_files(agent["agent_id"])
    return {
        "agent_id": agent["agent_id"],
        "agent": agent_config(agent),
        "inspection_mode": agent["inspection_mode"],
        "files_count": len(files),
        "files_digest_sha256": agent["files_digest"],
        "attested_files_count": sum(1 for f in files if f["attestable"]),
        "attested_files_digest_sha256": agent["attested_files_digest"],
        "archive_sha256": agent["archive_sha256"],
        "image_digest": {"id": "", "repo_digests": []},
    }
