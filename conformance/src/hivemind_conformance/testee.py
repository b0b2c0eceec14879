"""The reference echo testee: a client implementing the client echo contract.

It is built on ``hivemind_proto.trio.open_hive`` and does exactly what
docs/spec §9.2 asks of a client under test: complete the handshake with the
supplied identity, echo every BUS message back unchanged (including the inner
BUS of a BROADCAST addressed to its own site), ignore SHARED_BUS, ESCALATE and
PROPAGATE, and close when it receives BUS ``hive.conformance.close``.

Run it with ``python -m hivemind_conformance.testee URL --access-key K
--password P``; the suite's ``--exec`` mode launches it once per case.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

import trio
from hivemind_proto import HiveMessage, MessageType, NoiseIdentity, StaticKeypair
from hivemind_proto.trio import (
    HiveClient,
    HiveRefused,
    HiveUnavailable,
    Reconnect,
    SatelliteIdentity,
    open_hive,
)

CLOSE = "hive.conformance.close"


def respond(message: HiveMessage, site_id: str) -> HiveMessage | None:
    """What the testee sends back for ``message`` (None: nothing)."""
    if message.msg_type is MessageType.BUS:
        return message
    if message.msg_type is MessageType.BROADCAST:
        inner = message.inner
        if inner.msg_type is MessageType.BUS and message.target_site_id == site_id:
            return inner
    return None


async def serve_echo(client: HiveClient, site_id: str) -> None:
    """Echo until asked to close or the link is gone."""
    while True:
        message = await client.receive()
        if message.bus_type == CLOSE:
            return
        answer = respond(message, site_id)
        if answer is not None:
            await client.send(answer)


async def run_testee(
    url: str, identity: SatelliteIdentity, rng: Callable[[int], bytes] = os.urandom
) -> int:
    """Connect and echo; returns the process exit status."""
    try:
        async with open_hive(
            url, identity, reconnect=Reconnect(initial=0.5, maximum=2.0, attempts=3), rng=rng
        ) as client:
            await serve_echo(client, identity.site_id)
    except HiveRefused:
        return 3
    except HiveUnavailable:
        return 2
    return 0


def identity_from(args: argparse.Namespace) -> SatelliteIdentity:
    """The satellite identity the command line describes."""
    noise = NoiseIdentity(StaticKeypair.generate(os.urandom)) if args.noise else None
    return SatelliteIdentity(
        access_key=args.access_key,
        password=args.password,
        useragent=args.useragent,
        site_id=args.site_id,
        noise=noise,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="hivemind-conformance-testee", description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--access-key", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--useragent", default="HivemindConformanceTestee")
    parser.add_argument("--site-id", default="testee-site")
    parser.add_argument("--noise", action="store_true", help="offer the v3 Noise handshake")
    args = parser.parse_args(argv)
    return trio.run(run_testee, args.url, identity_from(args))


if __name__ == "__main__":
    sys.exit(main())
