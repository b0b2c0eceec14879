"""Types shared by the attestation providers and verifiers.

Theory of operation: the service asks one :class:`AttestationProvider` for
platform facts, quotes and deterministic keys. The production provider talks
to the dstack guest agent inside an Intel TDX confidential VM; the development
provider signs look-alike quotes with a local Ed25519 key. Everything above
the provider (REPORT_DATA, the run signer, run attestations, the client's
verifier) is the same code for both, so development exercises the production
paths. Providers are synchronous and may block briefly (the dstack agent is a
local socket): call them from a worker thread in async code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, final, runtime_checkable

__all__ = [
    "ATTESTED",
    "UNATTESTED",
    "AttestationError",
    "AttestationProvider",
    "AttestationRefused",
    "AttestationUnavailable",
    "PlatformInfo",
    "Quote",
    "QuoteClaims",
]

ATTESTED = "attested"
UNATTESTED = "unattested"


class AttestationError(Exception):
    """Base class of attestation errors."""


class AttestationUnavailable(AttestationError):
    """The platform cannot attest (no guest agent, no collateral, ...)."""


class AttestationRefused(AttestationError):
    """Evidence was checked and refused: the client must not proceed."""


@final
@dataclass(frozen=True)
class PlatformInfo:
    """What the platform says about the running application.

    Attributes:
        kind: ``"dstack"`` or ``"dev"``.
        app_id: the application identity (hex).
        instance_id: this instance (hex).
        compose_hash: SHA-256 hex of ``app_compose``.
        app_compose: the measured application description (JSON text).
        measurements: ``mrtd``, ``rtmr0``..``rtmr3`` and ``mr_config_id`` (hex).
    """

    kind: str
    app_id: str
    instance_id: str
    compose_hash: str
    app_compose: str
    measurements: Mapping[str, str] = field(default_factory=dict)


@final
@dataclass(frozen=True)
class Quote:
    """A quote over 64 bytes of REPORT_DATA.

    Attributes:
        kind: ``"dstack"`` (a raw Intel TDX quote) or ``"dev"`` (a signed
            development quote).
        quote: the quote bytes.
        event_log: the runtime event log (JSON text; RTMR3 replays from it).
        report_data: the 64 bytes the quote binds.
    """

    kind: str
    quote: bytes = field(repr=False)
    event_log: str = field(repr=False)
    report_data: bytes


@final
@dataclass(frozen=True)
class QuoteClaims:
    """Facts established by verifying a quote.

    Attributes:
        platform: ``"dstack"`` or ``"dev"``.
        tcb_status: ``"UpToDate"``... for TDX, ``"Dev"`` for development quotes.
        mrtd: MRTD (hex).
        rtmr: RTMR0..3 (hex).
        mr_config_id: MRCONFIGID (hex).
        report_data: the 64 bound bytes.
        debug: whether the TD runs in debug mode.
        issued_at: signing time (development quotes only; 0 otherwise).
    """

    platform: str
    tcb_status: str
    mrtd: str
    rtmr: tuple[str, str, str, str]
    mr_config_id: str
    report_data: bytes
    debug: bool
    issued_at: int = 0

    @property
    def compose_hash(self) -> str:
        """The compose hash carried in MRCONFIGID (``01 || sha256 || 0*15``), or ""."""
        raw = bytes.fromhex(self.mr_config_id) if self.mr_config_id else b""
        if len(raw) == 48 and raw[0] == 1 and raw[33:] == bytes(15):
            return raw[1:33].hex()
        return ""


@runtime_checkable
class AttestationProvider(Protocol):
    """The one interface the service uses to attest itself."""

    @property
    def kind(self) -> str:
        """``"dstack"`` or ``"dev"``."""
        ...

    def info(self) -> PlatformInfo:
        """Platform facts (app id, compose hash, measurements)."""
        ...

    def quote(self, report_data: bytes) -> Quote:
        """A fresh quote binding exactly 64 bytes of ``report_data``."""
        ...

    def derive_key(self, path: str) -> bytes:
        """A 32-byte secret, deterministic per application identity and ``path``."""
        ...
