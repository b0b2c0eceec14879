"""Run configuration shared by both modes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import final

from ._case import Profile


@final
@dataclass(frozen=True, slots=True)
class Credentials:
    """An access key and its password (the password never appears in reprs)."""

    access_key: str
    password: str = field(repr=False)


@final
@dataclass(frozen=True, slots=True)
class RunConfig:
    """Everything a run needs.

    Args:
        target: hub mode: the hub URL (``ws://host:port``); client mode: the
            ``--exec`` command template (``{url}`` is replaced), or empty when
            the caller launches clients itself.
        client: the test client's credentials (hub mode: provisioned on the
            hub; client mode: what the client under test will present).
        admin: optional admin client (hub mode).
        other: optional second client with ``can_propagate`` and
            ``can_escalate`` false (hub mode).
        profile: the highest profile to run (L, S or N).
        timeout: the absolute per-case timeout, seconds.
        reply_timeout: how long to wait for an answer the requirement calls for.
        quiet_timeout: how long to watch for something that must not happen.
        seed: seeds every random choice the suite makes.
        useragent: the useragent the suite presents (hub mode).
        hub_site_id: the hub's own site id, if known (hub mode, H36).
        max_frame_bytes: the largest frame the hub accepts (H46).
        handshake_timeout: the hub's handshake timeout (H47).
        nonce_samples: how many frames H19/C12 collect.
        bulk_rate: the pace of bulk sends, frames per second.
        concurrency: cases run at once.
        site_id: the site id the client under test announces (client mode).
    """

    target: str
    client: Credentials
    admin: Credentials | None = None
    other: Credentials | None = None
    profile: Profile = Profile.S
    timeout: float = 30.0
    reply_timeout: float = 5.0
    quiet_timeout: float = 1.0
    seed: int = 0
    useragent: str = "HivemindConformance/0.1"
    hub_site_id: str | None = None
    max_frame_bytes: int = 10 * 1024 * 1024
    handshake_timeout: float = 10.0
    nonce_samples: int = 1000
    #: Seconds a peer has to close when a requirement says it must (spec §0: 5).
    close_timeout: float = 5.0
    #: Seconds a launched client has to connect (client mode).
    launch_timeout: float = 20.0
    #: Sustained frames per second the suite sends in bulk cases (peers rate-limit).
    bulk_rate: float = 100.0
    concurrency: int = 4
    site_id: str | None = None
