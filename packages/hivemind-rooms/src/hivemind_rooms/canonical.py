"""Canonical JSON, hashes and strict base64 for everything the rooms sign.

Theory of operation: a signature is only as good as the agreement on the bytes
it covers. Every signed object (room manifests, trust updates, run
attestations, development quotes) is serialised with :func:`canonical_json`:
keys sorted recursively, no whitespace, non-ASCII characters written as UTF-8.

Floats are refused. Python's ``repr`` of a float is not what other languages
print, so a float in a signed object is a cross-language hazard; timestamps
are integer Unix seconds instead. With strings, integers in the IEEE-754 safe
range, booleans, null, lists and objects only, the output equals RFC 8785 (JCS)
for every input: keys are sorted by their UTF-16 code units (what JCS asks
for, and different from code point order only for characters outside the
Basic Multilingual Plane), and Python's string escaping with
``ensure_ascii=False`` matches ECMAScript's ``JSON.stringify``.

Base64 decoding is strict: the alphabet, the padding and the canonical
encoding are all checked, so one value has exactly one accepted spelling
(a signed key cannot be smuggled in a second, differently written form).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from typing import Any

__all__ = [
    "MAX_SAFE_INTEGER",
    "CanonicalError",
    "b64_decode",
    "b64_encode",
    "b64u_decode",
    "b64u_encode",
    "canonical_json",
    "sha256_hex",
]

MAX_SAFE_INTEGER = 2**53 - 1
_MAX_DEPTH = 64
_B64 = re.compile(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")
_B64U = re.compile(r"^[A-Za-z0-9_-]*$")


class CanonicalError(ValueError):
    """A value cannot be canonicalised or decoded."""


def canonical_json(obj: Any) -> bytes:
    """Serialise ``obj`` to canonical JSON bytes.

    Args:
        obj: a tree of dicts (string keys), lists/tuples, strings, integers,
            booleans and ``None``.

    Returns:
        The UTF-8 bytes of the canonical form.

    Raises:
        CanonicalError: the tree holds a float, a non-string key, an integer
            outside the safe range, a lone surrogate or an unsupported type.
    """
    return _encode(obj, 0).encode("utf-8")


def _encode(obj: Any, depth: int) -> str:
    if depth > _MAX_DEPTH:
        raise CanonicalError("object nested too deeply")
    if obj is None or isinstance(obj, bool):
        return json.dumps(obj)
    if isinstance(obj, int):
        if abs(obj) > MAX_SAFE_INTEGER:
            raise CanonicalError("integer outside the safe range")
        return str(int(obj))
    if isinstance(obj, str):
        return _encode_str(obj)
    if isinstance(obj, dict):
        return _encode_dict(obj, depth)
    if isinstance(obj, list | tuple):
        return "[" + ",".join(_encode(item, depth + 1) for item in obj) + "]"
    if isinstance(obj, float):
        raise CanonicalError("floats are not allowed in signed objects; use integers")
    raise CanonicalError(f"unsupported type {type(obj).__name__}")


def _encode_str(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CanonicalError("string holds a lone surrogate") from exc
    return json.dumps(text, ensure_ascii=False)


def _encode_dict(obj: dict[Any, Any], depth: int) -> str:
    for key in obj:
        if not isinstance(key, str):
            raise CanonicalError("object keys must be strings")
    keys = sorted(obj, key=lambda k: k.encode("utf-16-be", "surrogatepass"))
    parts = (_encode_str(k) + ":" + _encode(obj[k], depth + 1) for k in keys)
    return "{" + ",".join(parts) + "}"


def sha256_hex(data: bytes) -> str:
    """Return the lowercase hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def b64_encode(data: bytes) -> str:
    """Standard base64 with padding (the alphabet with ``+`` and ``/``)."""
    return base64.b64encode(data).decode("ascii")


def b64_decode(text: str, *, length: int | None = None) -> bytes:
    """Decode standard padded base64, refusing any non-canonical spelling.

    Args:
        text: the base64 text.
        length: if given, the exact number of decoded bytes required.

    Returns:
        The decoded bytes.

    Raises:
        CanonicalError: bad alphabet, padding, non-canonical bits or length.
    """
    if not isinstance(text, str) or not _B64.fullmatch(text):
        raise CanonicalError("not canonical base64")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CanonicalError("not canonical base64") from exc
    if b64_encode(data) != text:
        raise CanonicalError("not canonical base64")
    if length is not None and len(data) != length:
        raise CanonicalError(f"expected {length} bytes")
    return data


def b64u_encode(data: bytes) -> str:
    """URL-safe base64 without padding (``-`` and ``_``)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str, *, length: int | None = None) -> bytes:
    """Decode unpadded URL-safe base64, refusing any non-canonical spelling.

    Args:
        text: the base64url text, without ``=`` padding.
        length: if given, the exact number of decoded bytes required.

    Returns:
        The decoded bytes.

    Raises:
        CanonicalError: bad alphabet, impossible length, non-canonical bits or
            wrong decoded length.
    """
    if not isinstance(text, str) or not _B64U.fullmatch(text) or len(text) % 4 == 1:
        raise CanonicalError("not canonical base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise CanonicalError("not canonical base64url") from exc
    if b64u_encode(data) != text:
        raise CanonicalError("not canonical base64url")
    if length is not None and len(data) != length:
        raise CanonicalError(f"expected {length} bytes")
    return data
