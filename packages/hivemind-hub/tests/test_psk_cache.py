"""Noise PSKs are derived once per password and node id, not per handshake."""

from __future__ import annotations

import os
import threading

import trio
from hivemind_hub.psk import PskCache
from hivemind_proto import NoiseIdentity, Profile, StaticKeypair, derive_psk
from hivemind_proto.trio import SatelliteIdentity, open_hive

from .hubkit import PASSWORD, UTT, running_hub


class CountingDeriver:
    """The real argon2id derivation, counting its calls."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[tuple[str, str]] = []
        self.delay = delay
        self._lock = threading.Lock()

    def __call__(self, password: str, node_id: str) -> bytes:
        with self._lock:
            self.calls.append((password, node_id))
        if self.delay:
            threading.Event().wait(self.delay)
        return derive_psk(password, node_id)


def test_cache_derives_once_and_forgets() -> None:
    deriver = CountingDeriver()
    cache = PskCache(deriver, max_entries=2)
    first = cache.derive("pw-one", "hub-a")
    assert cache.derive("pw-one", "hub-a") == first == derive_psk("pw-one", "hub-a")
    assert len(deriver.calls) == 1
    assert cache.derive("pw-one", "hub-b") != first
    assert len(deriver.calls) == 2
    cache.forget("pw-one", "hub-a")
    assert cache.derive("pw-one", "hub-a") == first
    assert len(deriver.calls) == 3
    assert "pw-one" not in repr(cache)


def test_cache_is_bounded() -> None:
    calls: list[str] = []

    def fake_kdf(password: str, node_id: str) -> bytes:
        calls.append(password)
        return password.encode().ljust(32, b"\0")

    cache = PskCache(fake_kdf, max_entries=2)
    for password in ("a", "b", "c"):
        cache.derive(password, "hub")
    assert len(cache) == 2
    cache.derive("a", "hub")  # evicted as least recently used: derived again
    assert calls == ["a", "b", "c", "a"]


def test_concurrent_first_derivations_share_one_call() -> None:
    deriver = CountingDeriver(delay=0.2)
    cache = PskCache(deriver)
    results: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.derive("pw", "hub"))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 4
    assert len(set(results)) == 1
    assert len(deriver.calls) == 1


def noise_sat(session: str, psk: bytes, password: str = PASSWORD) -> SatelliteIdentity:
    return SatelliteIdentity(
        access_key="k1",
        password=password,
        useragent="TestSat",
        site_id="kitchen",
        session_id=session,
        noise=NoiseIdentity(StaticKeypair.generate(os.urandom), psk=psk),
        require_noise=True,
    )


async def test_noise_connections_of_one_client_derive_once(tmp_path) -> None:
    deriver = CountingDeriver()
    with trio.fail_after(60):
        async with running_hub(tmp_path, psk_cache=PskCache(deriver)) as serving:
            store = serving.hub.store
            rec = store.create(api_key="k1", name="one", password=PASSWORD, allowed_types=[UTT])
            node_id = serving.hub.identity.node_id
            psk = await trio.to_thread.run_sync(derive_psk, PASSWORD, node_id)
            url = f"ws://127.0.0.1:{serving.port}"

            async def connect(session: str, key: bytes) -> None:
                async with open_hive(url, noise_sat(session, key)) as client:
                    assert client.handshake.profile is Profile.NOISE

            await connect("s-one", psk)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(connect, "s-two", psk)
                nursery.start_soon(connect, "s-three", psk)
            assert deriver.calls == [(PASSWORD, node_id)]

            new_password = "a-new-password-of-some-length"
            store.update(rec.client_id, password=new_password)
            assert len(serving.hub.psk_cache) == 0
            new_psk = await trio.to_thread.run_sync(derive_psk, new_password, node_id)
            async with open_hive(url, noise_sat("s-four", new_psk, new_password)) as client:
                assert client.handshake.profile is Profile.NOISE
            assert deriver.calls == [(PASSWORD, node_id), (new_password, node_id)]
