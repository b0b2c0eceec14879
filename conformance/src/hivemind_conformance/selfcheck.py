"""Run the suite against the built-in reference targets, in one process.

``run_reference`` starts the reference hub on 127.0.0.1 (port 0) with a test
client, an admin client and a restricted client, runs every hub case against
it, then runs every client case against the reference testee launched in
process per case. ``make conformance`` and the self-tests use it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import trio
from hivemind_proto import NoiseIdentity, StaticKeypair
from hivemind_proto.trio import SatelliteIdentity

from ._clientctx import client_context_factory
from ._config import Credentials, RunConfig
from ._runner import CaseResult, check_hub, run_cases, select
from .reference_hub import ClientRecord, ReferenceHubConfig, serve_reference_hub
from .testee import run_testee

TEST = Credentials("conformance-test-client", "conformance-test-password")
ADMIN = Credentials("conformance-admin-client", "conformance-admin-password")
OTHER = Credentials("conformance-restricted-client", "conformance-restricted-password")
SMALL_FRAME = 256 * 1024


def reference_clients() -> dict[str, ClientRecord]:
    """The three clients of the reference hub."""
    return {
        TEST.access_key: ClientRecord(1, TEST.password, name="test"),
        ADMIN.access_key: ClientRecord(2, ADMIN.password, name="admin", is_admin=True),
        OTHER.access_key: ClientRecord(
            3, OTHER.password, name="restricted", can_propagate=False, can_escalate=False
        ),
    }


def reference_hub_config(**changes: Any) -> ReferenceHubConfig:
    """A reference hub suited to the suite: short timeouts, small frames."""
    config = ReferenceHubConfig(
        clients=reference_clients(), handshake_timeout=5.0, max_frame_bytes=SMALL_FRAME
    )
    return dataclasses.replace(config, **changes)


def hub_run_config(base: RunConfig, url: str, hub: ReferenceHubConfig) -> RunConfig:
    """The run configuration pointing at a started reference hub."""
    return dataclasses.replace(
        base,
        target=url,
        client=TEST,
        admin=ADMIN,
        other=OTHER,
        hub_site_id=hub.site_id,
        max_frame_bytes=hub.max_frame_bytes,
        handshake_timeout=hub.handshake_timeout,
    )


def launcher_for(
    identity: SatelliteIdentity,
    runner: Callable[[str, SatelliteIdentity], Any] = run_testee,
) -> Callable[[str], AbstractAsyncContextManager[None]]:
    """Launch ``runner`` (the reference testee by default) in process for each case."""

    @asynccontextmanager
    async def launch(url: str) -> AsyncIterator[None]:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(runner, url, identity)
            try:
                yield
            finally:
                nursery.cancel_scope.cancel()

    return launch


def reference_identity(noise: bool = False) -> SatelliteIdentity:
    """The identity the reference testee presents."""
    return SatelliteIdentity(
        access_key=TEST.access_key,
        password=TEST.password,
        useragent="HivemindConformanceTestee",
        site_id="testee-site",
        noise=NoiseIdentity(StaticKeypair.generate(os.urandom)) if noise else None,
    )


async def run_reference(
    base: RunConfig, patterns: Sequence[str] = ()
) -> tuple[list[CaseResult], list[CaseResult]]:
    """Run both modes against the reference targets."""
    from .cases import CLIENT_CASES

    hub_config = reference_hub_config()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_reference_hub, hub_config)
        config = hub_run_config(base, f"ws://127.0.0.1:{port}", hub_config)
        hub_results = await check_hub(config, patterns)
        nursery.cancel_scope.cancel()
    client_config = dataclasses.replace(base, client=TEST)
    launch = launcher_for(reference_identity(noise=True))
    cases = select(CLIENT_CASES, base.profile, patterns)
    client_results = await run_cases(cases, client_config, client_context_factory(launch))
    return hub_results, client_results
