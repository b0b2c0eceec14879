"""Cipher and text-encoding negotiation of the legacy handshake (spec §3.3-3.4).

The satellite lists what it supports in preference order; the hub keeps only
names in its own allowed lists and picks the satellite's first surviving
choice. A missing list means the protocol defaults (JSON-HEX, AES-GCM).
Profile S hardening: unknown names are ignored instead of aborting, an empty
intersection is refused with close code 1008, and JSON-Z85P (which the
released stack cannot decode, W13) is left out of the hub's defaults.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, TypeVar, final

from ._errors import RemoteProtocolError
from ._types import Cipher, TextEncoding

E = TypeVar("E", Cipher, TextEncoding)

#: What released 0.4.x satellites list, in their order.
SATELLITE_ENCODINGS: Final = (
    TextEncoding.JSON_B91,
    TextEncoding.JSON_Z85B,
    TextEncoding.JSON_Z85P,
    TextEncoding.JSON_B64,
    TextEncoding.JSON_URLSAFE_B64,
    TextEncoding.JSON_B32,
    TextEncoding.JSON_HEX,
)

#: Our hub's default allowed encodings: every one but JSON-Z85P.
HUB_ENCODINGS: Final = (
    TextEncoding.JSON_B64,
    TextEncoding.JSON_URLSAFE_B64,
    TextEncoding.JSON_B91,
    TextEncoding.JSON_Z85B,
    TextEncoding.JSON_B32,
    TextEncoding.JSON_HEX,
)

HUB_CIPHERS: Final = (Cipher.CHACHA20_POLY1305, Cipher.AES_GCM)
DEFAULT_ENCODING: Final = TextEncoding.JSON_HEX
DEFAULT_CIPHER: Final = Cipher.AES_GCM


def parse_names(value: Any, kind: type[E]) -> list[E] | None:
    """Parse a list of wire names, dropping unknown ones.

    Returns None when the field is absent (the peer relies on defaults).

    Raises:
        RemoteProtocolError: the field is present but not a list of strings.
    """
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RemoteProtocolError(f"handshake field for {kind.__name__} must be a list of names")
    known: list[E] = []
    for name in value:
        try:
            item = kind(name.upper())
        except ValueError:
            continue
        if item not in known:
            known.append(item)
    return known


def choose(offered: list[E] | None, allowed: Iterable[E], default: E) -> E:
    """Pick the peer's first offered choice that we allow.

    Raises:
        RemoteProtocolError: nothing acceptable is left (close 1008).
    """
    allowed_set = set(allowed)
    candidates = offered if offered else [default]
    for item in candidates:
        if item in allowed_set:
            return item
    raise RemoteProtocolError(f"no acceptable {default.__class__.__name__} offered")


@final
@dataclass(frozen=True, slots=True)
class Selection:
    """The outcome of a legacy negotiation."""

    cipher: Cipher
    encoding: TextEncoding
    binarize: bool


def negotiate(
    payload: dict[str, Any],
    *,
    allowed_ciphers: Iterable[Cipher],
    allowed_encodings: Iterable[TextEncoding],
    hub_binarize: bool,
) -> Selection:
    """Hub side: pick cipher, encoding and binarize from a satellite's payload.

    Raises:
        RemoteProtocolError: malformed lists or no acceptable choice.
    """
    ciphers = parse_names(payload.get("ciphers"), Cipher)
    encodings = parse_names(payload.get("encodings"), TextEncoding)
    return Selection(
        cipher=choose(ciphers, allowed_ciphers, DEFAULT_CIPHER),
        encoding=choose(encodings, allowed_encodings, DEFAULT_ENCODING),
        binarize=hub_binarize and payload.get("binarize") is True,
    )


def accept_selection(
    payload: dict[str, Any],
    offered_ciphers: Iterable[Cipher],
    offered_encodings: Iterable[TextEncoding],
) -> tuple[Cipher, TextEncoding]:
    """Satellite side: read the hub's choice, defaulting like released clients.

    Raises:
        RemoteProtocolError: the hub chose something we did not offer.
    """
    cipher = _one(payload.get("cipher"), Cipher, DEFAULT_CIPHER)
    encoding = _one(payload.get("encoding"), TextEncoding, DEFAULT_ENCODING)
    if cipher not in set(offered_ciphers) or encoding not in set(offered_encodings):
        raise RemoteProtocolError("the hub selected a cipher or encoding we did not offer")
    return cipher, encoding


def _one(value: Any, kind: type[E], default: E) -> E:
    if value is None:
        return default
    if not isinstance(value, str):
        raise RemoteProtocolError(f"handshake {kind.__name__} must be a name")
    try:
        return kind(value.upper())
    except ValueError:
        raise RemoteProtocolError(f"unknown {kind.__name__} {value!r}") from None
