"""Submitting a run, following it to the end, fetching its artifacts.

A submission carries an idempotency key, so it is retried (bounded) when the
connection fails: a retry cannot start a second run. Polling is bounded by a
deadline; a run still pending at the deadline raises :class:`RunTimeout`.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, final

from hivemind_rooms.agents_registry import AgentError, files_digest, read_archive
from hivemind_rooms.attestation.run import RunAttestationError, check_artifact

from .api import RoomApi
from .errors import AttestationInvalid, NetworkFailure, RunTimeout, ServiceError, UsageProblem

__all__ = [
    "RunBudget",
    "artifact_names",
    "fetch_artifacts",
    "local_agent_view",
    "run_stage",
    "submit_run",
    "upload_and_run",
    "wait_for_run",
]

FINAL = frozenset({"completed", "failed"})
_SUBMIT_RETRIES = 2
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_STAGES = ("build", "scope", "query", "mediator")


@final
@dataclass(frozen=True)
class RunBudget:
    """Per-run limits the participant asks for (None: the service default)."""

    timeout_seconds: int | None = None
    max_llm_calls: int | None = None
    max_tokens: int | None = None
    memory_mb: int | None = None
    models: Mapping[str, str] = field(default_factory=dict)
    provider: str | None = None

    def fields(self) -> dict[str, Any]:
        """The JSON fields of ``POST /v1/rooms/{id}/runs`` (None values dropped)."""
        body: dict[str, Any] = {
            "timeout_seconds": self.timeout_seconds,
            "max_llm_calls": self.max_llm_calls,
            "max_tokens": self.max_tokens,
            "provider": self.provider,
        }
        for role, model in self.models.items():
            body["model" if role == "all" else f"{role}_model"] = model
        return {k: v for k, v in body.items() if v is not None and v != ""}


def submit_run(
    api: RoomApi,
    room_id: str,
    question: str,
    budget: RunBudget,
    *,
    query_agent_id: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """``POST /v1/rooms/{id}/runs`` with an idempotency key; retried on connection failure.

    Raises:
        ServiceError: the service refused (402, 501...).
        NetworkFailure: every attempt failed to connect.
    """
    body = {"query": question, **budget.fields()}
    if query_agent_id:
        body["query_agent_id"] = query_agent_id
    headers = {"X-Hivemind-Idempotency-Key": uuid.uuid4().hex[:12]}
    for attempt in range(_SUBMIT_RETRIES + 1):
        try:
            return api.request("POST", f"/v1/rooms/{room_id}/runs", json=body, headers=headers)
        except NetworkFailure:
            if attempt == _SUBMIT_RETRIES:
                raise
            sleep(2.0 * (attempt + 1))
    raise AssertionError("unreachable")


def upload_and_run(
    api: RoomApi, room_id: str, question: str, archive: bytes, budget: RunBudget, *, name: str
) -> dict[str, Any]:
    """``POST /v1/rooms/{id}/query-agents``: upload a query agent and run it once."""
    data = {"name": name, "prompt": question}
    for key, value in (
        ("memory_mb", budget.memory_mb),
        ("max_llm_calls", budget.max_llm_calls),
        ("max_tokens", budget.max_tokens),
        ("timeout_seconds", budget.timeout_seconds),
        ("provider", budget.provider),
    ):
        if value is not None:
            data[key] = str(value)
    files = {"archive": ("agent.tar.gz", archive, "application/gzip")}
    return api.request("POST", f"/v1/rooms/{room_id}/query-agents", data=data, files=files)


def local_agent_view(agent_id: str, archive: bytes) -> dict[str, Any]:
    """The attestation view of an agent this client uploaded, computed locally.

    The digest is recomputed from the archive we sent, so the run attestation
    must name exactly that code.

    Raises:
        UsageProblem: the archive is not a valid agent archive.
    """
    try:
        files = read_archive(archive, max_archive_bytes=len(archive) + 1).files
    except AgentError as exc:
        raise UsageProblem(f"invalid agent archive: {exc.message}") from None
    digest = files_digest((path, content) for path, (content, _mode) in files.items())
    return {
        "agent_id": agent_id,
        "files_digest_sha256": digest,
        "attested_files_digest_sha256": digest,
    }


def run_stage(run: Mapping[str, Any]) -> str:
    """A short description of where a run is (``scope``, ``query``, ``done``...)."""
    status = str(run.get("status", ""))
    if status in FINAL:
        return status
    progress = run.get("progress")
    if isinstance(progress, Mapping) and isinstance(progress.get("stage"), str):
        return str(progress["stage"])
    current = "queued" if status in ("", "pending", "queued") else status
    for stage in _STAGES:
        if run.get(f"{stage}_started_at") is not None:
            current = stage
            if run.get(f"{stage}_ended_at") is not None:
                current = f"{stage} done"
    return current


def wait_for_run(
    api: RoomApi,
    run_id: str,
    *,
    deadline_seconds: float,
    on_progress: Callable[[dict[str, Any], float], None] | None = None,
    interval: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll ``GET /v1/runs/{id}`` until the run finishes or the deadline passes.

    Transient answers (404 before the row exists, 5xx, connection failures)
    are tolerated until the deadline.

    Raises:
        RunTimeout: the run did not finish in time.
    """
    start = clock()
    run: dict[str, Any] = {"run_id": run_id, "status": "pending"}
    while True:
        elapsed = clock() - start
        try:
            run = api.get(f"/v1/runs/{run_id}")
        except NetworkFailure:
            pass
        except ServiceError as exc:
            if exc.status != 404 and exc.status < 500:
                raise
        if on_progress is not None:
            on_progress(run, elapsed)
        if run.get("status") in FINAL:
            return run
        if elapsed >= deadline_seconds:
            raise RunTimeout(
                f"run {run_id} did not finish within {int(deadline_seconds)} s",
                hint=f"check it later with: hmctl runs show {run_id}",
            )
        sleep(min(interval, max(0.05, deadline_seconds - elapsed)))


def artifact_names(run: Mapping[str, Any]) -> list[str]:
    """The artifact file names a run lists (plain names or ``{"filename": ...}`` objects)."""
    names = []
    for item in run.get("artifacts") or []:
        name = item.get("filename", "") if isinstance(item, dict) else item
        if isinstance(name, str) and name:
            names.append(name)
    return names


def _check(signed: Mapping[str, Any], run_id: str, name: str, data: bytes | None) -> None:
    """Refuse an artifact the signed run body does not list, or whose bytes differ."""
    records = signed.get("artifacts")
    listed = isinstance(records, list) and any(
        isinstance(r, dict) and r.get("name") == name for r in records
    )
    try:
        if not listed:
            raise RunAttestationError("artifacts")
        if data is not None:
            check_artifact(signed, name, data)
    except RunAttestationError:
        raise AttestationInvalid(
            f"run {run_id}: artifact {name!r} does not match the signed run attestation",
            hint="the file was not saved; do not trust this artifact",
        ) from None


def fetch_artifacts(
    api: RoomApi,
    run: Mapping[str, Any],
    target: Path,
    *,
    signed: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Download every listed artifact of a run into ``target/<run_id>/``.

    Names that are not plain file names are skipped. With ``signed`` (the
    verified run attestation body) every listed name must be in its
    ``artifacts`` records, and each download must have the signed size and
    SHA-256 before it is written; otherwise nothing more is fetched.

    Raises:
        AttestationInvalid: an unsigned artifact name or a size/hash mismatch
            (the mismatching file is not written).
    """
    fetched = []
    run_id = str(run["run_id"])
    folder = target / run_id
    names = [n for n in artifact_names(run) if _SAFE_NAME.fullmatch(n)]
    if signed is not None:
        for name in names:
            _check(signed, run_id, name, None)
    for name in names:
        data = api.request("GET", f"/v1/runs/{run_id}/artifacts/{name}", raw=True)
        if signed is not None:
            _check(signed, run_id, name, data)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        path.write_bytes(data)
        fetched.append({"filename": name, "path": str(path), "size": len(data)})
    return fetched
