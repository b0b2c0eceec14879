"""Errors of the room client library.

Each class names one failure class a caller may want to handle differently;
the CLI maps each onto a stable exit code. Messages are one line meant for a
person; ``hint`` (optional) says what to do next. Messages never contain
credentials.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AccessRefused",
    "AttestationInvalid",
    "Conflict",
    "InvalidState",
    "NetworkFailure",
    "NotFound",
    "PaymentRequired",
    "RoomClientError",
    "RunFailed",
    "RunTimeout",
    "RunsUnavailable",
    "ServiceError",
    "TrustRefused",
    "UsageProblem",
]


class RoomClientError(Exception):
    """Base class of every room client failure.

    Attributes:
        message: one line describing what failed.
        hint: what the user can do about it ("" when nothing useful).
    """

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageProblem(RoomClientError):
    """The request cannot be made as given (bad link, missing profile...)."""


class InvalidState(RoomClientError):
    """A local state file is unreadable or malformed."""


class NetworkFailure(RoomClientError):
    """The service could not be reached or did not answer in time."""


class ServiceError(RoomClientError):
    """The service answered with an error status.

    Attributes:
        status: the HTTP status code.
        detail: the decoded ``detail`` of the error body (may be a list).
    """

    def __init__(self, status: int, detail: Any, *, hint: str = "") -> None:
        text = detail if isinstance(detail, str) else _flatten(detail)
        super().__init__(f"the service refused the request ({status}): {text}", hint=hint)
        self.status = status
        self.detail = detail


def _flatten(detail: Any) -> str:
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                parts.append(f"{loc}: {item.get('msg', '')}".strip(": "))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(detail)


class AccessRefused(ServiceError):
    """401 or 403: the credential is unknown, revoked or lacks the right."""


class NotFound(ServiceError):
    """404: the room, agent, run or tenant does not exist (for this caller)."""


class Conflict(ServiceError):
    """409: the request conflicts with the service's state."""


class PaymentRequired(ServiceError):
    """402: no payer, or the payer's balance does not cover the hold."""


class RunsUnavailable(ServiceError):
    """501: the service build cannot execute this (e.g. room runs)."""


class TrustRefused(RoomClientError):
    """Local trust policy refused to proceed (not accepted, declined, policy)."""


class AttestationInvalid(RoomClientError):
    """A signature, manifest, quote or run attestation failed verification."""


class RunFailed(RoomClientError):
    """The run finished with status ``failed``.

    Attributes:
        run_id: the failed run.
    """

    def __init__(self, message: str, *, run_id: str, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.run_id = run_id


class RunTimeout(RoomClientError):
    """The run did not finish within the client's deadline."""
