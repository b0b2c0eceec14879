"""The profile-N pre-shared key: Argon2id over the client's password.

Theory of operation: both sides of a Noise handshake need the same 32-byte PSK
without ever sending the password. The hub stores the password; the client
knows it; both stretch it with Argon2id, salted with SHA-256 of the hub's
``node_id`` so one password yields different keys on different hubs. The
parameters (t=3, m=64 MiB, p=1) make each guess cost real memory and time;
constrained devices receive the result precomputed instead of running it.

libsodium's password hashing API only accepts 16-byte salts, so Argon2id comes
from ``cryptography`` here, which takes the 32-byte salt as is.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from .._errors import LocalProtocolError

#: Argon2id passes over memory (t).
ARGON2_ITERATIONS = 3
#: Argon2id memory in KiB (m = 64 MiB).
ARGON2_MEMORY_KIB = 64 * 1024
#: Argon2id parallelism (p).
ARGON2_LANES = 1
#: Length of the derived key.
PSK_LENGTH = 32


def derive_psk(
    password: str,
    node_id: str,
    *,
    iterations: int = ARGON2_ITERATIONS,
    memory_kib: int = ARGON2_MEMORY_KIB,
    lanes: int = ARGON2_LANES,
) -> bytes:
    """Derive the Noise PSK of a client password for one hub.

    The keyword arguments exist for tests and benchmarks; the protocol uses
    the defaults (t=3, m=64 MiB, p=1), and a PSK derived with anything else
    will not match the peer's.

    Args:
        password: the client's password (encoded as UTF-8).
        node_id: the hub's HELLO ``node_id``; the salt is its SHA-256 digest.
        iterations: Argon2id t.
        memory_kib: Argon2id m in KiB.
        lanes: Argon2id p.

    Returns:
        32 bytes.

    Raises:
        LocalProtocolError: the password or node_id is empty or the cost
            parameters are out of range.
    """
    if not password:
        raise LocalProtocolError("an empty password cannot protect a Noise handshake")
    if not node_id:
        raise LocalProtocolError("the PSK salt needs the hub's node_id")
    salt = hashlib.sha256(node_id.encode("utf-8")).digest()
    return argon2id(password.encode("utf-8"), salt, iterations, memory_kib, lanes)


def argon2id(secret: bytes, salt: bytes, iterations: int, memory_kib: int, lanes: int) -> bytes:
    """Raw Argon2id (version 0x13) with a 32-byte output.

    Raises:
        LocalProtocolError: a parameter is out of range.
    """
    try:
        kdf = Argon2id(
            salt=salt,
            length=PSK_LENGTH,
            iterations=iterations,
            lanes=lanes,
            memory_cost=memory_kib,
        )
    except ValueError as exc:
        raise LocalProtocolError(f"invalid Argon2id parameters: {exc}") from None
    return kdf.derive(secret)
