"""The ``?authorization=`` credential of the websocket upgrade (spec §1.1).

The value is standard Base64 (``+/``, ``=`` padding) of ``useragent:access_key``.
Released clients send it unescaped; proxies and browsers may percent-encode it
or turn ``+`` into a space. ``parse_authorization`` accepts every one of these
forms, splits on the first ``:`` and requires both parts to be non-empty.
The access key names a client; it is not a secret (the password is).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Final, final
from urllib.parse import parse_qsl, unquote

from ._errors import RemoteProtocolError

MAX_AUTHORIZATION: Final = 4096


@final
@dataclass(frozen=True, slots=True)
class Authorization:
    """Who a connecting satellite says it is."""

    useragent: str
    access_key: str

    def __repr__(self) -> str:
        return f"Authorization(useragent={self.useragent!r})"


def build_authorization(useragent: str, access_key: str) -> str:
    """Return the Base64 value for the ``authorization`` query parameter."""
    if not useragent or not access_key:
        raise ValueError("useragent and access key must be non-empty")
    return base64.b64encode(f"{useragent}:{access_key}".encode()).decode("ascii")


def authorization_from_target(target: str) -> Authorization:
    """Parse the request target (``/?authorization=...``) of an upgrade request.

    Raises:
        RemoteProtocolError: missing or malformed credential (close 1008).
    """
    _, _, query = target.partition("?")
    values = [v for k, v in parse_qsl(query, keep_blank_values=True) if k == "authorization"]
    raw = [part.split("=", 1)[1] for part in query.split("&") if part.startswith("authorization=")]
    if len(values) != 1 or len(raw) != 1:
        raise RemoteProtocolError("invalid authorization")
    return parse_authorization(unquote(raw[0]))


def parse_authorization(value: str) -> Authorization:
    """Decode an ``authorization`` value (already percent-decoded).

    Raises:
        RemoteProtocolError: not Base64, no ``:``, or an empty part.
    """
    if not value or len(value) > MAX_AUTHORIZATION:
        raise RemoteProtocolError("invalid authorization")
    try:
        text = base64.b64decode(value.replace(" ", "+"), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise RemoteProtocolError("invalid authorization") from None
    useragent, sep, access_key = text.partition(":")
    if not sep or not useragent or not access_key:
        raise RemoteProtocolError("invalid authorization")
    return Authorization(useragent, access_key)
