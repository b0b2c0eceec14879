"""The development attestation provider: software-signed look-alike quotes.

Theory of operation: without a TEE, the service still runs every attestation
code path. A local Ed25519 *dev platform key* plays the role of Intel's quote
signing; a random *app secret* plays the role of the dstack KMS. The measured
application description (``app_compose``) is built from the service's real
configuration and a digest of its installed source, so the compose hash
changes whenever code or configuration change, as in production.

A dev quote is canonical JSON::

    {"body": {"format": "hivemind-dev-quote-v1", "report_data": hex64,
              "mr_config_id": "01" + compose_hash + "00"*15,
              "mrtd": hex, "rtmr": [hex x4], "app_id": hex,
              "compose_hash": hex, "issued_at": int},
     "signature_b64": b64, "signer_pubkey_b64": b64}

with the Ed25519 signature over the canonical bytes of ``body``. RTMR3 is
the replay of a dstack-shaped event log (app id, compose hash, instance id),
so the verifier's event-log replay runs here too. Whatever a dev quote
supports is labelled *unattested*: it proves only that someone holding the
dev root key signed it, which is why clients accept dev roots only when the
user adds them explicitly and, by default, only for loopback services.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from hivemind_rooms.attestation._types import AttestationRefused, PlatformInfo, Quote, QuoteClaims
from hivemind_rooms.attestation.eventlog import make_event, replay_rtmr3
from hivemind_rooms.canonical import CanonicalError, b64_decode, b64_encode, canonical_json
from hivemind_rooms.credentials import Rng

__all__ = ["DEV_QUOTE_FORMAT", "DevProvider", "build_dev_app_compose", "verify_dev_quote"]

DEV_QUOTE_FORMAT = "hivemind-dev-quote-v1"
_BODY_KEYS = frozenset(
    {"format", "report_data", "mr_config_id", "mrtd", "rtmr", "app_id", "compose_hash", "issued_at"}
)
_MAX_QUOTE = 64 * 1024


def _label_hash(label: str) -> str:
    return hashlib.sha384(b"hivemind-dev-measurement|" + label.encode()).hexdigest()


def _source_digest(packages: Iterable[str]) -> str:
    h = hashlib.sha256()
    for name in sorted(packages):
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            h.update(b"missing:" + name.encode() + b"\x00")
            continue
        root = Path(next(iter(spec.submodule_search_locations)))
        for path in sorted(root.rglob("*.py")):
            h.update(f"{name}/{path.relative_to(root).as_posix()}".encode() + b"\x00")
            h.update(path.read_bytes() + b"\x00")
    return h.hexdigest()


def build_dev_app_compose(
    config: Mapping[str, Any], *, version: str, packages: Iterable[str] = ("hivemind_rooms",)
) -> str:
    """Describe the running service the way a dstack app compose would.

    Args:
        config: the service's non-secret configuration (never put keys here).
        version: the service version.
        packages: importable packages whose source is digested into the description.

    Returns:
        Canonical JSON text; its SHA-256 is the dev compose hash.
    """
    doc = {
        "manifest_version": 2,
        "name": "hivemind-rooms",
        "runner": "dev",
        "version": version,
        "config": dict(config),
        "source_sha256": _source_digest(packages),
    }
    return canonical_json(doc).decode("utf-8")


@final
class DevProvider:
    """Development attestation provider (labelled unattested).

    Args:
        platform_seed: 32-byte seed of the dev platform (root) key.
        app_secret: 32 bytes standing in for the KMS root of this app.
        app_compose: the measured application description.
        instance_id: hex id of this instance.
        clock: returns integer Unix seconds (injected for tests).
    """

    kind = "dev"

    def __init__(
        self,
        *,
        platform_seed: bytes,
        app_secret: bytes,
        app_compose: str,
        instance_id: str,
        clock: Callable[[], int] | None = None,
    ) -> None:
        if len(platform_seed) != 32 or len(app_secret) != 32:
            raise ValueError("the dev platform seed and app secret are 32 bytes each")
        self._platform = SigningKey(platform_seed)
        self._app_secret = app_secret
        self._app_compose = app_compose
        self._instance_id = instance_id
        self._clock = clock or (lambda: int(time.time()))
        self._app_id = hashlib.sha256(b"hivemind-dev-app-id|" + app_secret).hexdigest()[:40]

    @classmethod
    def generate(
        cls, app_compose: str, *, rng: Rng | None = None, clock: Callable[[], int] | None = None
    ) -> DevProvider:
        """A provider with fresh keys (persist ``platform_seed``/``app_secret`` to keep them)."""
        draw = rng or secrets.token_bytes
        return cls(
            platform_seed=draw(32),
            app_secret=draw(32),
            app_compose=app_compose,
            instance_id=draw(20).hex(),
            clock=clock,
        )

    def __repr__(self) -> str:
        return f"DevProvider(root={self.root_public_key_b64()!r}, app_id={self._app_id!r})"

    def root_public_key_b64(self) -> str:
        """The dev root key clients must trust explicitly (``trust dev-root add``)."""
        return b64_encode(bytes(self._platform.verify_key))

    def _compose_hash(self) -> str:
        return hashlib.sha256(self._app_compose.encode("utf-8")).hexdigest()

    def _events(self) -> list[dict[str, Any]]:
        return [
            make_event("app-id", bytes.fromhex(self._app_id)),
            make_event("compose-hash", bytes.fromhex(self._compose_hash())),
            make_event("instance-id", bytes.fromhex(self._instance_id)),
        ]

    def _measurements(self) -> dict[str, str]:
        return {
            "mrtd": _label_hash("mrtd"),
            "rtmr0": _label_hash("rtmr0"),
            "rtmr1": _label_hash("rtmr1"),
            "rtmr2": _label_hash("rtmr2"),
            "rtmr3": replay_rtmr3(self._events()).hex(),
            "mr_config_id": "01" + self._compose_hash() + "00" * 15,
        }

    def info(self) -> PlatformInfo:
        """Platform facts, in the same shape as the dstack provider's."""
        return PlatformInfo(
            kind=self.kind,
            app_id=self._app_id,
            instance_id=self._instance_id,
            compose_hash=self._compose_hash(),
            app_compose=self._app_compose,
            measurements=self._measurements(),
        )

    def quote(self, report_data: bytes) -> Quote:
        """Sign a dev quote over exactly 64 bytes of REPORT_DATA."""
        if len(report_data) != 64:
            raise ValueError("REPORT_DATA is 64 bytes")
        m = self._measurements()
        body = {
            "format": DEV_QUOTE_FORMAT,
            "report_data": report_data.hex(),
            "mr_config_id": m["mr_config_id"],
            "mrtd": m["mrtd"],
            "rtmr": [m["rtmr0"], m["rtmr1"], m["rtmr2"], m["rtmr3"]],
            "app_id": self._app_id,
            "compose_hash": self._compose_hash(),
            "issued_at": self._clock(),
        }
        signed = {
            "body": body,
            "signature_b64": b64_encode(self._platform.sign(canonical_json(body)).signature),
            "signer_pubkey_b64": self.root_public_key_b64(),
        }
        return Quote(
            kind=self.kind,
            quote=canonical_json(signed),
            event_log=json.dumps(self._events()),
            report_data=report_data,
        )

    def derive_key(self, path: str) -> bytes:
        """HKDF-SHA256 of the app secret for ``path`` (the dev stand-in for KMS keys)."""
        hkdf = HKDF(hashes.SHA256(), 32, salt=b"hivemind-dev-kms-v1", info=path.encode("utf-8"))
        return hkdf.derive(self._app_secret)


def verify_dev_quote(quote: bytes, trusted_roots: Iterable[str]) -> QuoteClaims:
    """Verify a dev quote's signature against explicitly trusted dev roots.

    Args:
        quote: the quote bytes.
        trusted_roots: base64 Ed25519 public keys the user trusts as dev roots.

    Returns:
        The claims, with ``platform="dev"`` and ``tcb_status="Dev"``.

    Raises:
        AttestationRefused: malformed, signed by an untrusted key, or invalid.
    """
    roots = set(trusted_roots)
    try:
        if len(quote) > _MAX_QUOTE:
            raise AttestationRefused("dev quote too large")
        signed = json.loads(quote)
        body = signed["body"]
        if set(signed) != {"body", "signature_b64", "signer_pubkey_b64"}:
            raise AttestationRefused("dev quote malformed")
        if not isinstance(body, dict) or set(body) != _BODY_KEYS:
            raise AttestationRefused("dev quote malformed")
        if body["format"] != DEV_QUOTE_FORMAT or canonical_json(signed) != quote:
            raise AttestationRefused("dev quote malformed")
        signer = signed["signer_pubkey_b64"]
        if signer not in roots:
            raise AttestationRefused("dev quote signed by an untrusted dev root")
        key = VerifyKey(b64_decode(signer, length=32))
        key.verify(canonical_json(body), b64_decode(signed["signature_b64"], length=64))
        rtmr = tuple(str(r) for r in body["rtmr"])
        report_data = bytes.fromhex(body["report_data"])
        stamp = body["issued_at"]
        if not isinstance(stamp, int) or isinstance(stamp, bool):
            raise AttestationRefused("dev quote malformed")
        if len(rtmr) != 4 or len(report_data) != 64:
            raise AttestationRefused("dev quote malformed")
        return QuoteClaims(
            platform="dev",
            tcb_status="Dev",
            mrtd=str(body["mrtd"]),
            rtmr=(rtmr[0], rtmr[1], rtmr[2], rtmr[3]),
            mr_config_id=str(body["mr_config_id"]),
            report_data=report_data,
            debug=False,
            issued_at=stamp,
        )
    except BadSignatureError as exc:
        raise AttestationRefused("dev quote signature invalid") from exc
    except (ValueError, KeyError, TypeError, AttributeError, CanonicalError) as exc:
        raise AttestationRefused("dev quote malformed") from exc
