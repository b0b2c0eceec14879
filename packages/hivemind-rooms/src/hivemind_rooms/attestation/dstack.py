"""The production attestation provider: the dstack guest agent in a TDX CVM.

Theory of operation: inside a dstack confidential VM the guest agent listens
on a Unix socket (``/var/run/dstack.sock``; ``DSTACK_SIMULATOR_ENDPOINT``
points the SDK at a simulator instead). It returns TDX quotes over our
REPORT_DATA, platform information (app id, compose hash, measurements) and
KMS-derived keys that are stable per application identity and path. This
module maps those answers onto :class:`~hivemind_rooms.attestation.PlatformInfo`
and :class:`~hivemind_rooms.attestation.Quote`. Every failure to reach or use
the agent becomes :class:`AttestationUnavailable`: the service then reports
``ready: false`` and a strict client refuses it.
"""

from __future__ import annotations

import hashlib
from typing import Any, final

from hivemind_rooms.attestation._types import AttestationUnavailable, PlatformInfo, Quote

__all__ = ["DstackProvider"]

_KEY_DOMAIN = b"hivemind-rooms-kms-v1|"


@final
class DstackProvider:
    """Attestation through ``dstack_sdk.DstackClient``.

    Args:
        endpoint: the agent's socket path or HTTP URL (default: the SDK's
            discovery, honouring ``DSTACK_SIMULATOR_ENDPOINT``).
        timeout: seconds per call to the agent.

    Raises:
        AttestationUnavailable: the SDK is missing or the agent socket does
            not exist.
    """

    kind = "dstack"

    def __init__(self, endpoint: str | None = None, *, timeout: float = 10.0) -> None:
        try:
            from dstack_sdk import DstackClient
        except ImportError as exc:  # pragma: no cover - the dependency is declared
            raise AttestationUnavailable("dstack-sdk is not installed") from exc
        try:
            self._client: Any = DstackClient(endpoint, timeout=timeout)
        except (FileNotFoundError, OSError, ValueError) as exc:
            raise AttestationUnavailable(f"dstack guest agent not reachable: {exc}") from exc

    def __repr__(self) -> str:
        return "DstackProvider()"

    def _call(self, what: str, method: str, *args: Any) -> Any:
        try:
            return getattr(self._client, method)(*args)
        except Exception as exc:  # the SDK raises httpx, pydantic and runtime errors
            raise AttestationUnavailable(f"dstack {what} failed: {type(exc).__name__}") from exc

    def info(self) -> PlatformInfo:
        """Platform facts from the agent's ``Info`` call."""
        info = self._call("info", "info")
        tcb = info.tcb_info
        return PlatformInfo(
            kind=self.kind,
            app_id=str(info.app_id),
            instance_id=str(info.instance_id),
            compose_hash=str(info.compose_hash).lower(),
            app_compose=str(tcb.app_compose),
            measurements={
                "mrtd": str(tcb.mrtd),
                "rtmr0": str(tcb.rtmr0),
                "rtmr1": str(tcb.rtmr1),
                "rtmr2": str(tcb.rtmr2),
                "rtmr3": str(tcb.rtmr3),
            },
        )

    def quote(self, report_data: bytes) -> Quote:
        """A TDX quote over exactly 64 bytes of REPORT_DATA."""
        if len(report_data) != 64:
            raise ValueError("REPORT_DATA is 64 bytes")
        answer = self._call("quote", "get_quote", report_data)
        try:
            raw = bytes.fromhex(answer.quote)
        except (TypeError, ValueError) as exc:
            raise AttestationUnavailable("dstack quote is not hex") from exc
        return Quote(
            kind=self.kind, quote=raw, event_log=str(answer.event_log), report_data=report_data
        )

    def derive_key(self, path: str) -> bytes:
        """A 32-byte key from the KMS key at ``path`` (domain-separated SHA-256)."""
        answer = self._call("key derivation", "get_key", path, "")
        try:
            material = answer.decode_key()
        except (TypeError, ValueError) as exc:
            raise AttestationUnavailable("dstack key is not hex") from exc
        if len(material) < 32:
            raise AttestationUnavailable("dstack key too short")
        return hashlib.sha256(_KEY_DOMAIN + path.encode("utf-8") + b"|" + material[:32]).digest()
