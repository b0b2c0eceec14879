"""Run artifacts sealed at rest under the room key.

Theory of operation. A query agent of a room that allows artifacts (and pins
no mediator) may upload files with its answer. They are room data like the
vault items, so they get the same protection: each one is sealed with the
vault's :func:`~hivemind_rooms.vault.seal_blob` under the room key, and the
associated data binds the format version, tenant, room, run id and artifact
name. A sealed file is::

    FORMAT (1 byte, 0x01) || nonce (24) || XChaCha20-Poly1305 ciphertext || tag (16)

and lives at ``<root>/<tenant_id>/<run_id>/<name>.sealed``. Because the
associated data names the run and the artifact, a file moved to another run,
another room or another name, a flipped byte, a truncated file or a changed
format byte all fail with the vault's opaque
:class:`~hivemind_rooms.vault.VaultDecryptError`; nothing is ever served
that did not authenticate.

The key is taken from the process keyring at the moment of use, so the
restart property holds: a new process cannot open (or write) an artifact
until a credential opens the room again, and a room whose key was dropped
(revoked, deleted) refuses uploads for the rest of a running run.

Sizes. One artifact is at most ``max_file_bytes`` (25 MiB by default) and
arrives base64-encoded in one bridge request (8 MiB body limit), so it is
already whole in memory: it is sealed in one AEAD call, well below the
vault's blob limit, and opened whole before anything is served (a reader
never receives a prefix of a file that later fails to authenticate).

Attestation. The sink remembers the name, plaintext SHA-256 and size of each
file it stored (:meth:`SealedArtifactSink.attested`); the engine signs that
list into the run attestation, so a client can check every download.

Writes go to a ``.partial-`` file in the run directory (mode 0600) that is
renamed over the final name, so a reader sees the old sealed file or the new
one, never a torn write. Retention works on run directories as before
(:func:`sweep_sealed_artifacts`); the same sweep deletes any file there that
is neither sealed nor partial (plain files left by older versions).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Final, final

from ..attestation.run import artifact_entry
from ..bridge import ArtifactError, artifact_path, sweep_artifacts
from ..credentials import Rng
from ..vault import (
    KeyScope,
    SecretKey,
    VaultDecryptError,
    VaultKeyring,
    VaultLocked,
    open_blob,
    seal_blob,
)

__all__ = [
    "ARTIFACT_FORMAT",
    "SEALED_SUFFIX",
    "SealedArtifactSink",
    "open_artifact",
    "read_artifact",
    "seal_artifact",
    "sealed_artifact_names",
    "sealed_artifact_path",
    "sweep_sealed_artifacts",
]

ARTIFACT_FORMAT: Final = 1
SEALED_SUFFIX: Final = ".sealed"
_PARTIAL: Final = ".partial-"
_LABEL: Final = "artifact"
_MAX_FILE_BYTES: Final = 25 * 1024 * 1024
_MAX_FILES: Final = 16


def _ids(run_id: str, name: str, fmt: int) -> tuple[str, ...]:
    return (f"format-{fmt}", run_id, name)


def seal_artifact(
    key: SecretKey, scope: KeyScope, run_id: str, name: str, content: bytes,
    *, rng: Rng | None = None,
) -> bytes:  # fmt: skip
    """Seal one artifact's bytes for ``scope`` (tenant and room), run and name.

    Returns:
        The format byte followed by the vault blob (nonce, ciphertext, tag).
    """
    blob = seal_blob(key, scope, _LABEL, _ids(run_id, name, ARTIFACT_FORMAT), content, rng=rng)
    return bytes([ARTIFACT_FORMAT]) + blob


def open_artifact(key: SecretKey, scope: KeyScope, run_id: str, name: str, sealed: bytes) -> bytes:
    """Open bytes sealed by :func:`seal_artifact` with the same scope, run and name.

    Raises:
        VaultDecryptError: unknown format, wrong key, tenant, room, run or
            name, or any damage (no detail given).
    """
    if not sealed or sealed[0] != ARTIFACT_FORMAT:
        raise VaultDecryptError()
    return open_blob(key, scope, _LABEL, _ids(run_id, name, sealed[0]), sealed[1:])


def sealed_artifact_path(root: Path, tenant_id: str, run_id: str, name: str) -> Path | None:
    """Where the sealed artifact ``name`` of a run is stored, or None for a bad name."""
    path = artifact_path(root, tenant_id, run_id, name)
    return None if path is None else path.with_name(path.name + SEALED_SUFFIX)


def sealed_artifact_names(root: Path, tenant_id: str, run_id: str) -> list[str]:
    """The names of a run's sealed artifacts, sorted (names are not secret; contents are)."""
    path = artifact_path(root, tenant_id, run_id, "x")
    if path is None or not path.parent.is_dir():
        return []
    names = (
        p.name.removesuffix(SEALED_SUFFIX)
        for p in path.parent.iterdir()
        if p.name.endswith(SEALED_SUFFIX) and p.is_file()
    )
    return sorted(n for n in names if sealed_artifact_path(root, tenant_id, run_id, n))


def read_artifact(
    root: Path, key: SecretKey, scope: KeyScope, run_id: str, name: str
) -> bytes | None:
    """Read and open one stored artifact of a run of ``scope``'s room.

    Returns:
        The artifact, or None when no such artifact is stored.

    Raises:
        VaultDecryptError: the stored file does not authenticate for this
            room, run and name (moved, renamed, damaged).
    """
    path = sealed_artifact_path(root, scope.tenant_id, run_id, name)
    if path is None:
        return None
    try:
        sealed = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return None
    return open_artifact(key, scope, run_id, name, sealed)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{_PARTIAL}{secrets.token_hex(8)}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise


@final
class SealedArtifactSink:
    """Stores one run's artifacts sealed under its room key (an ``ArtifactStore``).

    Args:
        root: The artifacts directory.
        keyring: The process keyring (the room key is read at each upload).
        scope: The run's room (tenant and room id).
        run_id: The run.
        max_file_bytes: Largest single artifact (plaintext bytes).
        max_files: Most artifacts per run.
    """

    def __init__(
        self,
        root: Path,
        keyring: VaultKeyring,
        scope: KeyScope,
        run_id: str,
        *,
        max_file_bytes: int = _MAX_FILE_BYTES,
        max_files: int = _MAX_FILES,
    ) -> None:
        self._root, self._keyring, self._scope, self._run = root, keyring, scope, run_id
        self._max_bytes, self._max_files = max_file_bytes, max_files
        self.names: list[str] = []
        self._records: dict[str, dict[str, object]] = {}

    def __repr__(self) -> str:
        return f"SealedArtifactSink(run_id={self._run!r}, files={len(self.names)})"

    def store(self, filename: str, content: bytes) -> Path:
        """Seal and write (or replace) one artifact.

        Returns:
            The path of the sealed file.

        Raises:
            ArtifactError: bad name (400), too large (413), too many (429),
                room key not open in this process (503).
        """
        path = sealed_artifact_path(self._root, self._scope.tenant_id, self._run, filename)
        if path is None:
            raise ArtifactError(400, "invalid artifact filename")
        if len(content) > self._max_bytes:
            raise ArtifactError(413, "artifact too large")
        if filename not in self.names and len(self.names) >= self._max_files:
            raise ArtifactError(429, "too many artifacts for one run")
        try:
            key = self._keyring.get(self._scope)
        except VaultLocked:
            raise ArtifactError(
                503, "the room key is not open: artifacts cannot be sealed"
            ) from None
        _write_atomic(path, seal_artifact(key, self._scope, self._run, filename, content))
        self._records[filename] = artifact_entry(filename, content)
        if filename not in self.names:
            self.names.append(filename)
        return path

    def attested(self) -> list[dict[str, object]]:
        """The run attestation's artifact records (name, plaintext SHA-256, size), by name.

        A replaced artifact appears once, with the bytes stored last.
        """
        return [dict(self._records[n]) for n in sorted(self._records)]


def _purge_unsealed(root: Path) -> int:
    removed = 0
    for tenant in root.iterdir():
        for run in tenant.iterdir() if tenant.is_dir() else ():
            with contextlib.suppress(OSError):  # a run directory may vanish meanwhile
                removed += _purge_run(run)
    return removed


def _purge_run(run: Path) -> int:
    removed = 0
    for entry in run.iterdir() if run.is_dir() else ():
        keep = entry.name.endswith(SEALED_SUFFIX) or entry.name.startswith(_PARTIAL)
        if not keep and entry.is_file():
            entry.unlink(missing_ok=True)
            removed += 1
    return removed


def sweep_sealed_artifacts(root: Path, retention_s: float, now: float | None = None) -> int:
    """Apply retention to run directories and delete files there that are not sealed.

    Returns:
        The number of run directories deleted by retention.
    """
    removed = sweep_artifacts(root, retention_s, now)
    if root.is_dir():
        _purge_unsealed(root)
    return removed
