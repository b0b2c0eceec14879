"""The service's attestation state: provider choice, run signer, served documents.

Theory of operation: at start-up :meth:`AttestationService.bootstrap` picks a
provider (the dstack guest agent when its socket answers, otherwise the dev
provider whose keys persist in the data directory), reads the platform facts
once and derives the run signer for this compose hash. If nothing works the
service still starts, answering ``{"ready": false, "reason": ...}``; runs are
then stored unsigned and strict clients refuse them.

Documents without a nonce are cached briefly (dev quotes go stale after a few
minutes); documents for a client nonce are quoted fresh, at most
``fresh_quotes_per_minute`` of them per minute (a token bucket), beyond which
:class:`AttestationBusy` asks the caller to answer 429. Provider calls block,
so they run in a worker thread.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, final

import trio

from hivemind_rooms.attestation._types import (
    ATTESTED,
    UNATTESTED,
    AttestationError,
    AttestationProvider,
)
from hivemind_rooms.attestation.dev import DevProvider, build_dev_app_compose
from hivemind_rooms.attestation.document import build_attestation_document
from hivemind_rooms.attestation.dstack import DstackProvider
from hivemind_rooms.attestation.report_data import NONCE_MAX, NONCE_MIN
from hivemind_rooms.attestation.run_signer import RunSigner

__all__ = ["AttestationBusy", "AttestationService", "load_or_create_dev_provider"]

_DEV_KEY_FILE = "attestation-dev-keys.json"
_CACHE_SECONDS = 60


class AttestationBusy(AttestationError):
    """Too many fresh quotes were requested; retry later (HTTP 429)."""


def load_or_create_dev_provider(
    data_dir: Path, app_compose: str, *, clock: Callable[[], int] | None = None
) -> DevProvider:
    """The dev provider whose root key and app secret persist in ``data_dir``.

    The key file is created with mode 0600. A new instance id is drawn per start.
    """
    path = Path(data_dir) / _DEV_KEY_FILE
    if path.exists():
        stored = json.loads(path.read_text("utf-8"))
        seed, secret = bytes.fromhex(stored["platform_seed"]), bytes.fromhex(stored["app_secret"])
    else:
        seed, secret = secrets.token_bytes(32), secrets.token_bytes(32)
        text = json.dumps({"platform_seed": seed.hex(), "app_secret": secret.hex()})
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
    return DevProvider(
        platform_seed=seed,
        app_secret=secret,
        app_compose=app_compose,
        instance_id=secrets.token_hex(20),
        clock=clock,
    )


@final
class AttestationService:
    """What the HTTP layer needs: documents, the run signer, labels.

    Args:
        provider: the provider, or None when attestation is not ready.
        app_version: the version bound into REPORT_DATA.
        reason: why attestation is not ready (when ``provider`` is None).
        tls_spki_sha256: the TLS key hash to bind, when TLS ends in the service.
        fresh_quotes_per_minute: the budget of nonce quotes.
        clock: returns Unix seconds.
    """

    def __init__(
        self,
        provider: AttestationProvider | None,
        *,
        app_version: str,
        reason: str = "",
        tls_spki_sha256: bytes | None = None,
        fresh_quotes_per_minute: int = 30,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.provider = provider
        self.app_version = app_version
        self.reason = reason
        self._tls = tls_spki_sha256
        self._clock = clock
        self._rate = max(1, fresh_quotes_per_minute)
        self._tokens = float(self._rate)
        self._refilled = clock()
        self._cached: tuple[float, dict[str, Any]] | None = None
        self.compose_hash = ""
        self.run_signer: RunSigner | None = None
        if provider is not None:
            try:
                self.compose_hash = provider.info().compose_hash
                self.run_signer = RunSigner.from_provider(provider, compose_hash=self.compose_hash)
            except (AttestationError, ValueError) as exc:
                self.provider, self.reason = None, f"attestation bootstrap failed: {exc}"

    @classmethod
    def bootstrap(
        cls,
        data_dir: Path,
        *,
        app_version: str,
        config: Mapping[str, Any],
        mode: str = "auto",
        dstack_endpoint: str | None = None,
        **kwargs: Any,
    ) -> AttestationService:
        """Pick and start a provider.

        Args:
            data_dir: where the dev keys persist.
            app_version: the service version.
            config: non-secret configuration measured into the dev compose.
            mode: ``"dstack"`` (only), ``"dev"`` (only) or ``"auto"`` (dstack
                when its agent answers, else dev).
            dstack_endpoint: the agent endpoint (default: SDK discovery).
            **kwargs: passed to the constructor.
        """
        reason = ""
        if mode in ("auto", "dstack"):
            try:
                provider = DstackProvider(dstack_endpoint)
                provider.info()
                return cls(provider, app_version=app_version, **kwargs)
            except AttestationError as exc:
                reason = str(exc)
        if mode in ("auto", "dev"):
            compose = build_dev_app_compose(config, version=app_version)
            clock = kwargs.get("clock")
            dev = load_or_create_dev_provider(
                data_dir, compose, clock=(lambda: int(clock())) if clock else None
            )
            return cls(dev, app_version=app_version, **kwargs)
        return cls(None, app_version=app_version, reason=reason or "no attestation provider")

    @property
    def ready(self) -> bool:
        """Whether the service can attest itself and sign runs."""
        return self.provider is not None and self.run_signer is not None

    @property
    def platform(self) -> str:
        """``dstack``, ``dev`` or "" when not ready."""
        return self.provider.kind if self.provider is not None else ""

    @property
    def label(self) -> str:
        """``attested`` for dstack, ``unattested`` otherwise."""
        return ATTESTED if self.platform == "dstack" else UNATTESTED

    def _take_token(self) -> None:
        now = self._clock()
        self._tokens = min(self._rate, self._tokens + (now - self._refilled) * self._rate / 60)
        self._refilled = now
        if self._tokens < 1:
            raise AttestationBusy("too many fresh attestation requests; retry shortly")
        self._tokens -= 1

    def _document(self, nonce: bytes | None) -> dict[str, Any]:
        assert self.provider is not None
        assert self.run_signer is not None
        return build_attestation_document(
            self.provider,
            app_version=self.app_version,
            run_signer=self.run_signer,
            tls_spki_sha256=self._tls,
            nonce=nonce,
        )

    async def bundle(self, nonce: bytes | None = None) -> dict[str, Any]:
        """The ``GET /v1/attestation`` body.

        Returns:
            ``{"ready": false, "reason"}`` or ``{"ready": true, "label",
            "attestation": <document>}``.

        Raises:
            AttestationBusy: the fresh-quote budget is spent (answer 429).
            ValueError: a nonce of the wrong length (answer 400).
        """
        if nonce is not None and not NONCE_MIN <= len(nonce) <= NONCE_MAX:
            raise ValueError("a nonce is 16 to 32 bytes")
        if not self.ready:
            return {"ready": False, "reason": self.reason or "attestation is not ready"}
        try:
            if nonce is not None:
                self._take_token()
                doc = await trio.to_thread.run_sync(self._document, nonce)
            elif self._cached is not None and self._clock() - self._cached[0] < _CACHE_SECONDS:
                doc = self._cached[1]
            else:
                doc = await trio.to_thread.run_sync(self._document, None)
                self._cached = (self._clock(), doc)
        except AttestationBusy:
            raise
        except AttestationError as exc:
            return {"ready": False, "reason": f"attestation failed: {exc}"}
        return {"ready": True, "label": self.label, "attestation": doc}
