"""`make demo`: run the main job end to end on loopback and print what was verified.

Today it exercises the wire protocol between a hub and a satellite over real
websockets on 127.0.0.1, with the legacy password handshake and with Noise.
"""

from __future__ import annotations

import os
import sys
import time

import trio
from hivemind_proto import (
    Authorization,
    HiveMessage,
    HubSettings,
    MessageReceived,
    MessageType,
    NoiseIdentity,
    StaticKeypair,
    bus_message,
)
from hivemind_proto.trio import HiveChannel, SatelliteIdentity, open_hive, serve_hive

ACCESS_KEY = os.urandom(16).hex()
PASSWORD = os.urandom(16).hex()
HUB_KEY = StaticKeypair.generate(os.urandom)


async def authenticate(auth: Authorization) -> HubSettings | None:
    if auth.access_key != ACCESS_KEY:
        return None
    hello = {"pubkey": None, "peer": f"{auth.useragent}::demo", "node_id": "demo-hub"}
    return HubSettings(hello=hello, password=PASSWORD, noise=NoiseIdentity(HUB_KEY))


async def echo(channel: HiveChannel, auth: Authorization) -> None:
    while True:
        event = await channel.receive_event()
        if isinstance(event, MessageReceived):
            await channel.send(event.message)


async def ask(url: str, noise: bool) -> str:
    identity = SatelliteIdentity(
        access_key=ACCESS_KEY,
        password=PASSWORD,
        site_id="demo",
        noise=NoiseIdentity(StaticKeypair.generate(os.urandom)) if noise else None,
        require_noise=noise,
    )
    message = HiveMessage(MessageType.BUS, bus_message("demo.ping", {"text": "hello hive"}))
    started = time.perf_counter()
    async with open_hive(url, identity) as client:
        assert client.handshake is not None
        await client.send(message)
        reply = await client.receive(timeout=10)
        assert reply == message, "the echo differs from what was sent"
        profile = client.handshake.noise_protocol or (
            f"{client.handshake.cipher.value} / {client.handshake.encoding.value}"  # type: ignore[union-attr]
        )
    return f"{profile}: round trip verified in {1000 * (time.perf_counter() - started):.0f} ms"


async def main() -> int:
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(
                lambda task_status: serve_hive(
                    authenticate, echo, "127.0.0.1", 0, rng=os.urandom, task_status=task_status
                )
            )
            url = f"ws://127.0.0.1:{port}"
            print(f"hub listening on {url}")
            print("legacy password handshake ->", await ask(url, noise=False))
            print("Noise XXpsk2 handshake    ->", await ask(url, noise=True))
            nursery.cancel_scope.cancel()
    print("demo finished: every step verified")
    return 0


if __name__ == "__main__":
    sys.exit(trio.run(main))
