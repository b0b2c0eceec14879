"""The ``hmroom://`` room link: a per-participant invite or the room's share link.

Theory of operation: a room link carries four things a participant needs,
and nothing else::

    hmroom://HOST/ROOM_ID?service=PCT(BASE)&token=PCT(TOKEN)&owner_pubkey=PCT(PUB)
    hmroom://HOST/ROOM_ID?service=PCT(BASE)&share=PCT(SHARE)&owner_pubkey=PCT(PUB)

The first form is an invite: ``TOKEN`` is an ``hmq_`` token minted for one
participant. The second is the room's share link: ``SHARE`` is the room's
single ``hms_`` token, held by everyone the owner gave the link to. Both are
presented to the service the same way (``Authorization: Bearer``); the
service gives a share token the narrower ``share`` role (it can read and ask
its one room, never upload a query agent or see another room), and the owner
can disable or rotate it at any time. :attr:`RoomLink.kind` tells them apart.

``BASE`` (the ``service`` parameter) is the authoritative service URL; the
authority ``HOST`` is informational only and never used to connect. ``PCT``
percent-encodes every byte except ``A-Z a-z 0-9 _ . - ~``. ``PUB`` is the
standard base64 of the owner's 32-byte Ed25519 public key: the trust anchor a
participant checks the room manifest against.

Parsing is strict: ``service`` and ``owner_pubkey`` exactly once, exactly
one of ``token`` / ``share`` (never both), no other parameter, no fragment,
one percent-decoding pass only, and every value in its exact format (the
credential's prefix must match its parameter: ``token=hmq_…``,
``share=hms_…``). A malformed or altered link raises :class:`LinkError`; a
well-formed link naming the wrong owner key is caught later, when the room
manifest fails to verify against it.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import final
from urllib.parse import SplitResult, parse_qsl, quote, urlsplit

from hivemind_rooms.canonical import CanonicalError, b64_decode
from hivemind_rooms.credentials import CredentialKind

__all__ = ["LinkError", "LinkKind", "RoomLink", "normalise_service_url"]

SCHEME = "hmroom"
_MAX_LINK = 4096
_ROOM_ID = re.compile(r"^room_[0-9a-f]{12}$")
_CREDENTIAL_BODY = r"[A-Za-z0-9_-]{43}"
_PARAMS = ("service", "token", "share", "owner_pubkey")
_HOST_CHARS = re.compile(r"^[A-Za-z0-9.\-\[\]:]+$")


class LinkError(ValueError):
    """An ``hmroom://`` link (or one of its parts) is malformed."""


class LinkKind(enum.Enum):
    """What a room link's credential is; the value is its query parameter.

    Attributes:
        INVITE: a per-participant ``hmq_`` invite token (``token=``).
        SHARE: the room's ``hms_`` share token (``share=``).
    """

    INVITE = "token"
    SHARE = "share"

    @property
    def prefix(self) -> str:
        """The textual prefix of this kind's credential."""
        return _PREFIX[self]

    @property
    def label(self) -> str:
        """A word for people: ``invite`` or ``share``."""
        return "invite" if self is LinkKind.INVITE else "share"

    def matches(self, credential: object) -> bool:
        """Whether ``credential`` is a well-formed credential of this kind."""
        return isinstance(credential, str) and bool(_CREDENTIAL[self].fullmatch(credential))


_PREFIX = {LinkKind.INVITE: CredentialKind.INVITE.value, LinkKind.SHARE: CredentialKind.SHARE.value}
_CREDENTIAL = {
    kind: re.compile("^" + re.escape(prefix) + _CREDENTIAL_BODY + "$")
    for kind, prefix in _PREFIX.items()
}


def _split(url: str) -> SplitResult:
    try:
        return urlsplit(url)
    except ValueError as exc:
        raise LinkError("malformed URL") from exc


def normalise_service_url(url: str) -> str:
    """Drop trailing slashes from a service base URL, then validate it.

    Raises:
        LinkError: not an http(s) URL with a host and an optional path.
    """
    if not isinstance(url, str):
        raise LinkError("service URL must be text")
    url = url.strip().rstrip("/")
    _check_service(url)
    return url


def _check_service(url: str) -> None:
    if not isinstance(url, str) or not url or len(url) > 2048 or url.endswith("/"):
        raise LinkError("invalid service URL")
    if any(c.isspace() or ord(c) < 0x21 or ord(c) > 0x7E for c in url):
        raise LinkError("invalid service URL")
    parts = _split(url)
    if parts.scheme not in ("http", "https") or parts.query or parts.fragment:
        raise LinkError("service URL must be http(s) without query or fragment")
    if "?" in url or "#" in url:
        raise LinkError("service URL must be http(s) without query or fragment")
    _check_authority(parts.netloc)


def _check_authority(netloc: str) -> None:
    if not netloc or "@" in netloc or not _HOST_CHARS.fullmatch(netloc):
        raise LinkError("invalid host")
    parts = _split("//" + netloc)
    try:
        port = parts.port
    except ValueError as exc:
        raise LinkError("invalid port") from exc
    if not parts.hostname or port == 0:
        raise LinkError("invalid host")


@final
@dataclass(frozen=True)
class RoomLink:
    """A parsed, validated room link (an invite or the room's share link).

    Attributes:
        room_id: ``room_`` + 12 hex.
        service_url: the authoritative service base URL (no trailing slash).
        token: the credential the link carries, presented as the bearer: an
            ``hmq_`` invite token or an ``hms_`` share token, as ``kind``
            says (a secret: hidden in the repr).
        owner_pubkey_b64: standard base64 of the owner's Ed25519 public key.
        kind: :attr:`LinkKind.INVITE` (default) or :attr:`LinkKind.SHARE`.
    """

    room_id: str
    service_url: str
    token: str
    owner_pubkey_b64: str
    kind: LinkKind = LinkKind.INVITE

    def __post_init__(self) -> None:
        if not isinstance(self.room_id, str) or not _ROOM_ID.fullmatch(self.room_id):
            raise LinkError("invalid room id")
        _check_service(self.service_url)
        if not isinstance(self.kind, LinkKind):
            raise LinkError("invalid link kind")
        if not self.kind.matches(self.token):
            other = LinkKind.SHARE if self.kind is LinkKind.INVITE else LinkKind.INVITE
            if other.matches(self.token):
                raise LinkError(
                    f"a {other.label} token ({other.prefix}...) cannot stand in {self.kind.value}="
                )
            raise LinkError(f"invalid {self.kind.label} token")
        try:
            b64_decode(self.owner_pubkey_b64, length=32)
        except CanonicalError as exc:
            raise LinkError("invalid owner public key") from exc

    def __repr__(self) -> str:
        return (
            f"RoomLink(room_id={self.room_id!r}, service_url={self.service_url!r}, "
            f"token=<hidden>, owner_pubkey_b64={self.owner_pubkey_b64!r}, kind={self.kind})"
        )

    @property
    def is_share(self) -> bool:
        """Whether this is the room's share link (``hms_``) rather than an invite."""
        return self.kind is LinkKind.SHARE

    @property
    def owner_public_key(self) -> bytes:
        """The raw 32-byte owner public key."""
        return b64_decode(self.owner_pubkey_b64, length=32)

    def format(self) -> str:
        """Render the link text (``hmroom://...``)."""
        host = _split(self.service_url).netloc
        return (
            f"{SCHEME}://{host}/{self.room_id}"
            f"?service={quote(self.service_url, safe='')}"
            f"&{self.kind.value}={quote(self.token, safe='')}"
            f"&owner_pubkey={quote(self.owner_pubkey_b64, safe='')}"
        )

    def __str__(self) -> str:
        return self.format()

    @classmethod
    def parse(cls, text: str) -> RoomLink:
        """Parse and validate link text (surrounding whitespace is ignored).

        Raises:
            LinkError: any malformed part; a missing, repeated or unknown
                parameter; both or neither of ``token`` and ``share``; a
                credential whose prefix does not match its parameter.
        """
        if not isinstance(text, str):
            raise LinkError("invalid hmroom link")
        text = text.strip()
        if len(text) > _MAX_LINK or not text.startswith(SCHEME + "://"):
            raise LinkError("invalid hmroom link")
        if any(c.isspace() or ord(c) < 0x21 or ord(c) > 0x7E for c in text):
            raise LinkError("invalid hmroom link: unexpected characters")
        parts = _split(text)
        if parts.fragment or "#" in text:
            raise LinkError("invalid hmroom link: fragment not allowed")
        _check_authority(parts.netloc)
        room_id = parts.path[1:] if parts.path.startswith("/") else ""
        if not _ROOM_ID.fullmatch(room_id):
            raise LinkError("invalid hmroom link: bad room id")
        values = _parse_query(parts.query)
        kind = LinkKind.SHARE if "share" in values else LinkKind.INVITE
        return cls(
            room_id=room_id,
            service_url=values["service"],
            token=values[kind.value],
            owner_pubkey_b64=values["owner_pubkey"],
            kind=kind,
        )


def _parse_query(query: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(
            query, keep_blank_values=True, strict_parsing=True, errors="strict", max_num_fields=8
        )
    except ValueError as exc:
        raise LinkError("invalid hmroom link: bad query") from exc
    values: dict[str, str] = {}
    for key, value in pairs:
        if key not in _PARAMS:
            raise LinkError(f"invalid hmroom link: unexpected parameter {key[:20]!r}")
        if key in values:
            raise LinkError(f"invalid hmroom link: repeated parameter {key!r}")
        values[key] = value
    if "token" in values and "share" in values:
        raise LinkError("invalid hmroom link: both token and share given (exactly one allowed)")
    missing = [k for k in ("service", "owner_pubkey") if k not in values]
    if "token" not in values and "share" not in values:
        missing.insert(1, "token (or share)")
    if missing:
        raise LinkError(f"invalid hmroom link: missing {', '.join(missing)}")
    return values
