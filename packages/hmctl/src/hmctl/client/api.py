"""A small synchronous client of the room service HTTP API (httpx).

Every method is one request; non-2xx answers raise the matching
:mod:`hmctl.client.errors` class and transport failures raise
:class:`NetworkFailure`. The bearer and the payer key are sent as headers and
never appear in messages or reprs. The payer key (a tenant's own ``hmk_``) goes
only with the run routes that bill or show runs, never with the attestation
and room routes a participant calls before the service is verified. The
bearer never goes with ``GET /v1/attestation`` (a public route): verifying a
service sends it no credential.
"""

from __future__ import annotations

import io
import json as _json
import re
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, final

import httpx

from .errors import (
    AccessRefused,
    Conflict,
    NetworkFailure,
    NotFound,
    PaymentRequired,
    RunsUnavailable,
    ServiceError,
    UsageProblem,
)

__all__ = ["RoomApi", "pack_agent"]

DEFAULT_TIMEOUT = 30.0
_MAX_ARCHIVE = 50 * 1024 * 1024
_SDK_NAME = "hivemind_agent.py"
# the routes that read X-Hivemind-Api-Key: run submission, agent upload into a room, run reads
_PAYER_ROUTE = re.compile(r"/v1/(?:runs(?:/[^?#]*)?|rooms/[^/?#]+/(?:runs|query-agents))")
_PUBLIC_ROUTES = frozenset({"/v1/attestation", "/v1/healthz"})
_SKIP = frozenset({"__pycache__", ".git", ".venv", "node_modules"})
_STATUS_CLASSES: dict[int, type[ServiceError]] = {
    401: AccessRefused,
    402: PaymentRequired,
    403: AccessRefused,
    404: NotFound,
    409: Conflict,
    501: RunsUnavailable,
}
_HINTS = {
    401: "check the profile's API key (hmctl whoami) or ask the operator for a new one",
    402: "add credit with: hmctl redeem-credit CODE (see: hmctl balance)",
    501: "this service build does not offer it yet; try a newer service",
}


def _agent_files(path: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    sdk = path.parent / "sdk" / _SDK_NAME
    if not (path / _SDK_NAME).exists() and sdk.is_file():
        files[_SDK_NAME] = sdk.read_bytes()
    total = 0
    for item in sorted(path.rglob("*")):
        rel = item.relative_to(path)
        if item.is_symlink() or not item.is_file() or _SKIP & set(rel.parts):
            continue
        total += item.stat().st_size
        if total > _MAX_ARCHIVE:
            raise UsageProblem(f"{path} is larger than {_MAX_ARCHIVE} bytes")
        files[rel.as_posix()] = item.read_bytes()
    return files


def pack_agent(path: Path) -> bytes:
    """Return a ``.tar.gz`` of an agent directory, or the bytes of a ``.tar.gz`` file.

    A directory is packed deterministically (sorted members, zero times),
    without caches or VCS folders. When it has no ``hivemind_agent.py`` but a
    sibling ``sdk/hivemind_agent.py`` exists (the repository's ``agents/``
    layout), that agent SDK is added at the archive root.

    Raises:
        UsageProblem: the path does not exist, has no Dockerfile, or is too large.
    """
    if path.is_file():
        data = path.read_bytes()
        if not data.startswith(b"\x1f\x8b"):
            raise UsageProblem(f"{path} is not a .tar.gz archive")
        return data
    if not path.is_dir():
        raise UsageProblem(f"{path} is neither an agent directory nor a .tar.gz archive")
    if not (path / "Dockerfile").is_file():
        raise UsageProblem(f"{path} has no Dockerfile", hint="an agent directory needs one")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, content in _agent_files(path).items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(content), 0o644, 0
            tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


@final
class RoomApi:
    """One room service, one bearer.

    Args:
        service: base URL, e.g. ``http://127.0.0.1:8100``.
        bearer: ``hmk_``, ``hmq_``, ``hms_`` or admin key ("" for public routes).
        payer_key: a tenant key sent as ``X-Hivemind-Api-Key`` with the run
            routes only (participant runs).
        timeout: per-request timeout in seconds.
        transport: an httpx transport (tests may pass one).
        max_response_bytes: the largest answer read (artifacts are at most 25 MiB).
    """

    def __init__(
        self,
        service: str,
        bearer: str = "",
        *,
        payer_key: str = "",
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        max_response_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.service = service.rstrip("/")
        self.max_response_bytes = max_response_bytes
        headers = {"Accept": "application/json", "User-Agent": "hmctl"}
        self._bearer = bearer
        self._payer_key = payer_key
        self._client = httpx.Client(
            base_url=self.service, headers=headers, timeout=timeout, transport=transport
        )

    def __repr__(self) -> str:
        return f"RoomApi(service={self.service!r})"

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> RoomApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport ------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        files: Mapping[str, Any] | None = None,
        raw: bool = False,
    ) -> Any:
        """Send one request; return the decoded JSON (or bytes with ``raw``).

        Raises:
            NetworkFailure: connection refused, DNS failure, timeout.
            ServiceError: (or a subclass) a non-2xx answer.
        """
        if self._bearer and path not in _PUBLIC_ROUTES:
            headers = {**(headers or {}), "Authorization": f"Bearer {self._bearer}"}
        if self._payer_key and _PAYER_ROUTE.fullmatch(path):
            headers = {**(headers or {}), "X-Hivemind-Api-Key": self._payer_key}
        try:
            with self._client.stream(
                method, path, json=json, params=params, headers=headers, data=data, files=files
            ) as response:
                content = self._read_bounded(response)
        except httpx.TimeoutException:
            raise NetworkFailure(
                f"{self.service} did not answer in time",
                hint="check the service is running, or retry later",
            ) from None
        except httpx.HTTPError as exc:
            raise NetworkFailure(
                f"cannot reach {self.service} ({type(exc).__name__})",
                hint="check the service URL and that the service is running",
            ) from None
        if response.status_code >= 400:
            raise _error(response.status_code, content, response.reason_phrase)
        if raw:
            return content
        try:
            return _json.loads(content)
        except ValueError:
            raise ServiceError(response.status_code, "the answer is not JSON") from None

    def _read_bounded(self, response: httpx.Response) -> bytes:
        chunks, size = [], 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self.max_response_bytes:
                raise NetworkFailure(
                    f"{self.service} sent more than {self.max_response_bytes} bytes; stopped"
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def get(self, path: str, **params: Any) -> Any:
        """``GET path`` with query parameters (None values dropped)."""
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, params=clean or None)

    # -- system ---------------------------------------------------------------

    def attestation(self, nonce: bytes | None = None) -> dict[str, Any]:
        """``GET /v1/attestation`` (fresh quote for ``nonce``)."""
        return self.get("/v1/attestation", nonce=nonce.hex() if nonce else None)

    def room_attest(self, room_id: str, nonce: bytes | None = None) -> dict[str, Any]:
        """``GET /v1/rooms/{id}/attest``."""
        return self.get(f"/v1/rooms/{room_id}/attest", nonce=nonce.hex() if nonce else None)


def _error(status: int, content: bytes, reason: str) -> ServiceError:
    try:
        detail = _json.loads(content).get("detail", "")
    except (ValueError, AttributeError):
        detail = content[:200].decode("utf-8", "replace") or reason
    cls = _STATUS_CLASSES.get(status, ServiceError)
    return cls(status, detail, hint=_HINTS.get(status, ""))
