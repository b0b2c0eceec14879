"""Our hub against the released hivemind-core 4.0.0 hub, through a real OVOS message bus.

One run starts a real ``ovos-messagebus`` on a free loopback port and a bus
participant (``packages/hivemind-hub/tests/interop/bus_responder.py``, shared
with the end-to-end tests, interop virtualenv) that answers every
``recognizer_loop:utterance`` with a ``speak`` reply addressed back to the
asking peer. Then, for each hub under test (ours, then the reference), it
starts the hub in its own process (own process group, throwaway XDG tree,
free port, raised open-file limit), provisions a client, and drives it with
satellites written on our own protocol code (``HiveWebSocket`` over trio TCP
streams), measuring:

* messages/s and p50/p99 round trip (utterance sent -> bus reply received
  through the hub) for 1 satellite (one pass with one message in flight for
  the round trip, one pass with a window of messages in flight for the
  rate) and for 100 satellites (one message in flight each);
* the hub's own CPU time per round trip (``/proc/<pid>/stat`` utime +
  stime over a pass), which separates the hub's cost from the bus, the
  responder and the load generator that share the cores;
* legacy password handshake latency (TCP connect -> keys agreed), p50/p99
  over sequential handshakes;
* hub RSS (``/proc/<pid>/status`` VmRSS) per idle connection, before and
  after opening many connections that then stay idle.

It also measures the ceiling without any hub (utterances straight onto the
OVOS bus, same responder, same window) and waits for each hub to go quiet
between phases.

Every satellite uses profile L (what released clients speak) so the load is
the same for both hubs; the rows say which handshake each used. The largest
idle size uses the legacy pre-shared key handshake against our hub (no
PBKDF2: 10,000 password handshakes would cost the hub and the load generator
about 10,000 x 33 ms of CPU each). Noise satellites with a precomputed PSK
would not help: the hub derives the argon2id PSK (64 MiB, about 170 ms) on
every Noise handshake. The reference runs the small idle size with password
handshakes (bounded by its phase budget); the large size is reported as
"n/a (reason)" for it. The load generator and the hubs share the cores.

Our hub runs with a benchmark ``limits`` section (rate limit and
per-credential connection cap raised, longer handshake timeout) and WARNING
logging; the reference runs with its defaults (see
``/work/shared/spec/real-hub-recipe.md``).

Usage: ``python bench/hub/run.py [--quick] [--only both|ours|reference]
[--idle-only] [--json PATH]``. ``HIVEMIND_INTEROP_PYTHON`` names the interop virtualenv's
python (default ``.cache/interop-venv/bin/python``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import itertools
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio
from hivemind_proto import (
    ConnectionClosed,
    HandshakeComplete,
    HiveMessage,
    HiveWebSocket,
    MessageReceived,
    MessageType,
    ProtocolError,
    Role,
    SatelliteSettings,
    bus_message,
)

ROOT = Path(__file__).resolve().parents[2]
_PEERS = ROOT / "tools" / "reference_peers.py"
_spec = importlib.util.spec_from_file_location("reference_peers", _PEERS)
peers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(peers)
RESPONDER = ROOT / "packages" / "hivemind-hub" / "tests" / "interop" / "bus_responder.py"
UTT = "recognizer_loop:utterance"
ACCESS_KEY = "benchkey0123456789abcdef01234567"
PSK_ACCESS_KEY = "benchpsk0123456789abcdef01234567"
PASSWORD = "bench-horse-battery-staple-7391"
CRYPTO_KEY = "benchcryptokey16"
HOST = "127.0.0.1"
RECV = 65536
REFERENCE_ENCODINGS = [
    "JSON-B64",
    "JSON-URLSAFE-B64",
    "JSON-B91",
    "JSON-Z85B",
    "JSON-B32",
    "JSON-HEX",
]


@dataclass(frozen=True)
class Plan:
    """Counts and time budgets of one run."""

    pass_seconds: float
    pass_max_messages: int
    window: int
    satellites: int
    handshakes: int
    idle_small: int
    idle_big: int
    idle_budget: float
    ref_idle_budget: float
    connect_concurrency: int = 64


FULL = Plan(
    pass_seconds=8.0,
    pass_max_messages=50_000,
    window=64,
    satellites=100,
    handshakes=40,
    idle_small=1_000,
    idle_big=10_000,
    idle_budget=240.0,
    ref_idle_budget=150.0,
)
QUICK = Plan(
    pass_seconds=1.5,
    pass_max_messages=2_000,
    window=8,
    satellites=10,
    handshakes=5,
    idle_small=20,
    idle_big=100,
    idle_budget=10.0,
    ref_idle_budget=20.0,
)


# -- processes ------------------------------------------------------------------


def raise_nofile() -> None:
    """Raise the soft open-file limit to the hard one (also used in children)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Processes:
    """Children started in their own process groups; ``close`` kills every group."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, argv: list[str], env: dict[str, str], **kwargs: Any) -> subprocess.Popen[bytes]:
        """Start ``argv`` in a new session with a raised open-file limit."""
        kwargs.setdefault("stdout", subprocess.DEVNULL)
        kwargs.setdefault("stderr", subprocess.DEVNULL)
        proc = subprocess.Popen(
            argv, env=env, start_new_session=True, preexec_fn=raise_nofile, **kwargs
        )
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGTERM the group, SIGKILL it after 5 s, reap."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # stragglers left in the group
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()

    def close(self) -> None:
        """Stop every child, newest first."""
        while self.procs:
            self.stop(self.procs.pop())


async def wait_port(port: int, seconds: float, proc: subprocess.Popen[bytes]) -> None:
    """Wait until ``port`` accepts connections (fails if ``proc`` exits)."""
    with trio.fail_after(seconds):
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
            try:
                stream = await trio.open_tcp_stream(HOST, port)
            except OSError:
                await trio.sleep(0.05)
                continue
            await stream.aclose()
            return


def rss_kib(pid: int) -> int:
    """VmRSS of ``pid`` in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (all its threads) in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the OVOS side ----------------------------------------------------------------


@dataclass
class Bus:
    """The running OVOS bus and its responder."""

    port: int
    env: dict[str, str]


def start_bus(procs: Processes, root: Path, py: Path) -> tuple[Bus, list[subprocess.Popen[bytes]]]:
    """Start ``ovos-messagebus`` and the responder (call ``ready_bus`` next)."""
    port = peers.free_port()
    peers.write_bus_config(root, port)
    env = peers.xdg_env(root)
    bus = procs.start([str(py.parent / "ovos-messagebus")], env)
    return Bus(port, env), [bus]


async def ready_bus(
    procs: Processes, bus: Bus, bus_proc: subprocess.Popen[bytes], py: Path
) -> None:
    """Wait for the bus, start the responder and wait for its ``ready``."""
    await wait_port(bus.port, 30, bus_proc)
    responder = procs.start(
        [str(py), str(RESPONDER), str(bus.port), "bench reply"],
        bus.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert responder.stdout is not None
    with trio.fail_after(60):
        for _ in range(200):  # skip the library's log lines
            line = await trio.to_thread.run_sync(responder.stdout.readline, abandon_on_cancel=True)
            if line.strip() == b"ready":
                return
            if not line:
                break
    raise RuntimeError("the bus responder did not become ready")


async def bus_alone(bus: Bus, window: int, seconds: float) -> dict[str, Any]:
    """The ceiling without a hub: utterances straight onto the OVOS bus, replies matched.

    One trio-websocket client keeps ``window`` utterances in flight for
    ``seconds``; the bus and the responder do exactly the work they do behind
    a hub, so no hub can beat this rate on the same machine.
    """
    from trio_websocket import open_websocket_url

    rtts: list[float] = []
    pending: dict[int, float] = {}
    slots = trio.Semaphore(window)
    started = time.perf_counter()
    last = started
    async with open_websocket_url(f"ws://{HOST}:{bus.port}/core") as ws:

        async def reader() -> None:
            nonlocal last
            while True:
                message = json.loads(await ws.get_message())
                data = message.get("data") or {}
                if message.get("type") == "speak" and data.get("i") in pending:
                    last = time.perf_counter()
                    rtts.append(last - pending.pop(data["i"]))
                    slots.release()

        context = {"source": "bench-direct", "session": {"session_id": "bench-direct"}}
        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            with trio.move_on_after(seconds):
                for i in itertools.count():
                    await slots.acquire()
                    pending[i] = time.perf_counter()
                    await ws.send_message(json.dumps(bus_message(UTT, {"i": i}, context)))
            with trio.move_on_after(3):
                while pending:  # noqa: ASYNC110 (replies arrive on the reader task)
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
    elapsed = max(last - started, 1e-9)
    return {"window": window, "replies": len(rtts), "msgs_per_s": len(rtts) / elapsed}


# -- the hubs under test ------------------------------------------------------------


@dataclass
class HubUnderTest:
    """A started hub: its process, port and the provisioned credentials."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    psk_key: str | None
    notes: list[str] = field(default_factory=list)


def ours_server_json(port: int, bus_port: int, db: Path) -> dict[str, Any]:
    """server.json for our hub: loopback, SQLite, the OVOS agent, benchmark limits."""
    return {
        "network_protocol": {"hivemind-websocket-plugin": {"host": HOST, "port": port}},
        "agent_protocol": {
            "module": "hivemind-ovos-agent-plugin",
            "hivemind-ovos-agent-plugin": {"host": HOST, "port": bus_port},
        },
        "database": {
            "module": "hivemind-sqlite-db-plugin",
            "hivemind-sqlite-db-plugin": {"path": str(db)},
        },
        "limits": {
            "handshake_timeout": 120.0,
            "rate_limit_messages_per_second": 1_000_000.0,
            "rate_limit_burst": 1_000_000,
            "max_connections_per_credential": 20_000,
            "outbound_queue_size": 256,
        },
    }


async def start_ours(procs: Processes, root: Path, bus: Bus) -> HubUnderTest:
    """Provision through the library, then run ``hmctl hub listen`` in a child."""
    from hivemind_hub.store import SQLiteClientStore

    port = peers.free_port()
    db = root / "clients.db"
    peers.write_hub_config(root, ours_server_json(port, bus.port, db))
    store = SQLiteClientStore(db)
    try:
        store.create(api_key=ACCESS_KEY, name="bench", password=PASSWORD, allowed_types=[UTT])
        store.create(
            api_key=PSK_ACCESS_KEY,
            name="bench-psk",
            password=None,
            crypto_key=CRYPTO_KEY,
            allowed_types=[UTT],
        )
    finally:
        store.close()
    env = peers.xdg_env(root, HIVEMIND_LOG_LEVEL="WARNING")
    proc = procs.start([str(ROOT / ".venv" / "bin" / "hmctl"), "hub", "listen"], env)
    await wait_port(port, 60, proc)
    notes = ["ours: benchmark limits (rate limit and per-credential cap raised), WARNING logs"]
    return HubUnderTest("ours", proc, port, PSK_ACCESS_KEY, notes)


async def start_reference(procs: Processes, root: Path, bus: Bus, py: Path) -> HubUnderTest:
    """``hivemind-core add-client`` then ``hivemind-core listen`` (interop virtualenv)."""
    port = peers.free_port()
    data = root / ".local" / "share"
    peers.write_hub_config(
        root, peers.reference_hub_config(port, bus.port, data, REFERENCE_ENCODINGS)
    )
    env = peers.xdg_env(root)
    cli = str(py.parent / "hivemind-core")
    add = ["add-client", "--name", "bench", "--access-key", ACCESS_KEY, "--password", PASSWORD]
    with trio.fail_after(60):
        await trio.run_process([cli, *add], env=env, capture_stdout=True, capture_stderr=True)
    proc = procs.start([cli, "listen"], env)
    await wait_port(port, 60, proc)
    notes = ["reference: hivemind-core 4.0.0 defaults (INFO logs, JSON client db)"]
    return HubUnderTest("reference", proc, port, None, notes)


# -- satellites ---------------------------------------------------------------------

_session_ids = itertools.count()


class Satellite:
    """One legacy-profile satellite over a trio TCP stream."""

    def __init__(self, stream: trio.SocketStream, ws: HiveWebSocket, session: str) -> None:
        self.stream = stream
        self.ws = ws
        self.session = session
        self._send_lock = trio.Lock()

    @classmethod
    async def connect(
        cls, port: int, key: str, *, crypto_key: str | None, limiter: trio.CapacityLimiter
    ) -> Satellite:
        """Open a connection and run the handshake (KDF work in a worker thread)."""
        session = f"bench-{os.getpid()}-{next(_session_ids)}"
        hello = {"pubkey": None, "session": {"session_id": session, "site_id": "bench"}}
        settings = SatelliteSettings(
            password=PASSWORD, hello={**hello, "site_id": "bench"}, crypto_key=crypto_key
        )
        ws = HiveWebSocket(
            Role.SATELLITE,
            rng=os.urandom,
            settings=settings,
            host=HOST,
            useragent="HubBench",
            access_key=key,
        )
        stream = await trio.open_tcp_stream(HOST, port)
        try:
            await stream.send_all(ws.data_to_send())
            while True:
                data = await stream.receive_some(RECV)
                if not data:
                    raise ConnectionError("closed during the handshake")
                events = await trio.to_thread.run_sync(ws.receive_data, data, limiter=limiter)
                out = ws.data_to_send()
                if out:
                    await stream.send_all(out)
                for event in events:
                    if isinstance(event, ConnectionClosed):
                        raise ConnectionError(f"closed during the handshake: {event.code}")
                    if isinstance(event, HandshakeComplete):
                        return cls(stream, ws, session)
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise

    async def send(self, message: HiveMessage) -> None:
        """Seal and write one message."""
        async with self._send_lock:
            self.ws.send(message)
            await self.stream.send_all(self.ws.data_to_send())

    async def pump(self, on_message: Callable[[HiveMessage], None]) -> None:
        """Read until closed, handing every message to ``on_message``."""
        while True:
            data = await self.stream.receive_some(RECV)
            if not data:
                return
            for event in self.ws.receive_data(data):
                if isinstance(event, MessageReceived):
                    on_message(event.message)
            out = self.ws.data_to_send()
            if out:
                async with self._send_lock:
                    await self.stream.send_all(out)

    async def aclose(self) -> None:
        """Close without waiting for the peer."""
        await trio.aclose_forcefully(self.stream)


def utterance(i: int, session: str) -> HiveMessage:
    """The request: an utterance carrying its sequence number.

    Its context holds the session, as released clients send it (a hub treats a
    message without one as the ``default`` session, which only admins may use).
    """
    data = {"utterances": ["what time is it"], "i": i}
    context = {"session": {"session_id": session, "site_id": "bench"}, "source": "HubBench"}
    return HiveMessage(
        MessageType.BUS, bus_message(UTT, data, {**context, "destination": "HiveMind"})
    )


def reply_index(message: HiveMessage) -> int | None:
    """The sequence number of a ``speak`` reply, else None."""
    payload = message.payload
    if message.msg_type is not MessageType.BUS or not isinstance(payload, dict):
        return None
    if payload.get("type") != "speak":
        return None
    i = payload.get("data", {}).get("i")
    return i if isinstance(i, int) else None


# -- measurements -------------------------------------------------------------------


def pct(values: list[float], q: float) -> float | None:
    """The q-quantile (nearest rank) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def connect_many(
    hub: HubUnderTest, n: int, *, key: str, crypto_key: str | None, budget: float, concurrency: int
) -> tuple[list[Satellite], int]:
    """Open up to ``n`` satellites within ``budget`` seconds; returns them and the failures."""
    sats: list[Satellite] = []
    failures = 0
    gate = trio.Semaphore(concurrency)
    limiter = trio.CapacityLimiter(2)

    async def one() -> None:
        nonlocal failures
        try:
            with trio.fail_after(60):
                sats.append(
                    await Satellite.connect(hub.port, key, crypto_key=crypto_key, limiter=limiter)
                )
        except (OSError, ConnectionError, ProtocolError, trio.TooSlowError):
            failures += 1
        finally:
            gate.release()

    with trio.move_on_after(budget):
        async with trio.open_nursery() as nursery:
            for _ in range(n):
                await gate.acquire()
                nursery.start_soon(one)
    return sats, failures


_request_ids = itertools.count()


async def load_pass(
    sats: list[Satellite], window: int, seconds: float, limit: int
) -> dict[str, Any]:
    """Each satellite keeps ``window`` utterances in flight for ``seconds`` (at most ``limit``).

    Senders stop at the deadline (never cancelled inside a write), then the
    replies still in flight get a short grace period before the readers stop.
    """
    rtts: list[float] = []
    sent = 0
    started = time.perf_counter()
    deadline = trio.current_time() + seconds  # trio's clock, not perf_counter
    last = started
    in_flight = 0
    broken: list[int | None] = []  # close codes of connections the hub closed

    async def drive(sat: Satellite) -> None:
        nonlocal sent, in_flight
        slots = trio.Semaphore(window)
        pending: dict[int, float] = {}

        def on_message(message: HiveMessage) -> None:
            nonlocal last, in_flight
            t0 = pending.pop(reply_index(message), None)  # type: ignore[arg-type]
            if t0 is not None:
                last = time.perf_counter()
                rtts.append(last - t0)
                in_flight -= 1
                slots.release()

        readers.start_soon(sat.pump, on_message)
        while sent < limit and trio.current_time() < deadline:
            with trio.move_on_at(deadline):
                await slots.acquire()
            if trio.current_time() >= deadline:
                break
            i = next(_request_ids)
            pending[i] = time.perf_counter()
            sent += 1
            in_flight += 1
            try:
                await sat.send(utterance(i, sat.session))
            except (trio.BrokenResourceError, trio.ClosedResourceError, ProtocolError):
                broken.append(sat.close_code)
                in_flight -= len(pending)
                pending.clear()
                return

    async with trio.open_nursery() as readers:
        async with trio.open_nursery() as senders:
            for sat in sats:
                senders.start_soon(drive, sat)
        with trio.move_on_after(3):
            while in_flight > 0:  # noqa: ASYNC110 (replies arrive on reader tasks)
                await trio.sleep(0.01)
        readers.cancel_scope.cancel()
    elapsed = max(last - started, 1e-9)
    return {
        "satellites": len(sats),
        "window": window,
        "sent": sent,
        "replies": len(rtts),
        "seconds": round(elapsed, 3),
        "msgs_per_s": len(rtts) / elapsed if rtts else 0.0,
        "rtt_p50_ms": _ms(pct(rtts, 0.50)),
        "rtt_p99_ms": _ms(pct(rtts, 0.99)),
        "closed_by_hub": broken,
    }


def _ms(value: float | None) -> float | None:
    return None if value is None else value * 1000


async def warm_up(hub: HubUnderTest, seconds: float = 30) -> None:
    """Wait until a reply makes it through the hub and the bus (the agent link is up)."""
    with trio.fail_after(seconds):
        sat = await Satellite.connect(
            hub.port, ACCESS_KEY, crypto_key=None, limiter=trio.CapacityLimiter(1)
        )
        try:
            while True:
                result = await load_pass([sat], 1, 1.0, 1)
                if result["replies"]:
                    return
        finally:
            await sat.aclose()


async def handshakes(hub: HubUnderTest, n: int, budget: float) -> dict[str, Any]:
    """Sequential password handshakes: TCP connect -> keys agreed."""
    times: list[float] = []
    limiter = trio.CapacityLimiter(1)
    with trio.move_on_after(budget):
        for _ in range(n):
            t0 = time.perf_counter()
            sat = await Satellite.connect(hub.port, ACCESS_KEY, crypto_key=None, limiter=limiter)
            times.append(time.perf_counter() - t0)
            await sat.aclose()
    return {"n": len(times), "p50_ms": _ms(pct(times, 0.5)), "p99_ms": _ms(pct(times, 0.99))}


async def idle_rss(
    hub: HubUnderTest, n: int, *, key: str, crypto_key: str | None, budget: float, concurrency: int
) -> dict[str, Any]:
    """Hub RSS before and after ``n`` idle connections."""
    pid = hub.proc.pid
    before = rss_kib(pid)
    t0 = time.perf_counter()
    sats, failures = await connect_many(
        hub, n, key=key, crypto_key=crypto_key, budget=budget, concurrency=concurrency
    )
    took = time.perf_counter() - t0
    try:
        await trio.sleep(2)  # let the hub settle (buffers, tasks) before reading RSS
        alive = hub.proc.poll() is None
        after = rss_kib(pid) if alive else None
    finally:
        with trio.CancelScope(shield=True):
            for sat in sats:
                await sat.aclose()
    reached = len(sats)
    result: dict[str, Any] = {
        "target": n,
        "reached": reached,
        "failures": failures,
        "connect_seconds": round(took, 2),
        "rss_before_kib": before,
        "rss_after_kib": after,
        "handshake": "pre-shared key" if crypto_key else "password",
    }
    if after is not None and reached:
        result["kib_per_connection"] = (after - before) / reached
    if reached < n:
        why = "hub exited" if not alive else f"{reached} of {n} connected in {budget:.0f} s"
        result["na"] = why
    return result


# -- one hub --------------------------------------------------------------------------


async def metered(hub: HubUnderTest, measurement: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """Run a load pass, add the hub's CPU time per reply (ms), then let the hub go quiet."""
    before = cpu_seconds(hub.proc.pid)
    result = await measurement
    used = cpu_seconds(hub.proc.pid) - before
    result["hub_cpu_ms_per_msg"] = used * 1000 / result["replies"] if result["replies"] else None
    await settle(hub)
    return result


async def settle(hub: HubUnderTest, seconds: float = 15.0) -> None:
    """Wait (bounded) until the hub uses under 5 % of a core, so a backlog left by
    one phase (queued bus traffic, closing connections) does not skew the next."""
    with trio.move_on_after(seconds):
        while True:
            before = cpu_seconds(hub.proc.pid)
            await trio.sleep(0.5)
            if cpu_seconds(hub.proc.pid) - before < 0.025:
                return


async def bench_hub(
    hub: HubUnderTest, plan: Plan, *, is_reference: bool, idle_only: bool = False
) -> dict[str, Any]:
    """Every measurement against one started hub (only the idle RSS ones if ``idle_only``)."""
    out: dict[str, Any] = {"notes": hub.notes}
    await warm_up(hub)
    if not idle_only:
        await traffic(hub, plan, out)
    await idle(hub, plan, out, is_reference=is_reference)
    return out


async def traffic(hub: HubUnderTest, plan: Plan, out: dict[str, Any]) -> None:
    """Round trips, rates, hub CPU and handshake latency, into ``out``."""
    one = await connect_many(hub, 1, key=ACCESS_KEY, crypto_key=None, budget=30, concurrency=1)
    try:
        out["one_rtt"] = await metered(
            hub, load_pass(one[0], 1, plan.pass_seconds, plan.pass_max_messages)
        )
        out["one_rate"] = await metered(
            hub, load_pass(one[0], plan.window, plan.pass_seconds, plan.pass_max_messages)
        )
    finally:
        for sat in one[0]:
            await sat.aclose()
    many, _ = await connect_many(
        hub, plan.satellites, key=ACCESS_KEY, crypto_key=None, budget=120, concurrency=16
    )
    try:
        out["many"] = await metered(
            hub, load_pass(many, 1, plan.pass_seconds, plan.pass_max_messages)
        )
    finally:
        for sat in many:
            await sat.aclose()
    await settle(hub)
    out["handshake"] = await handshakes(hub, plan.handshakes, 60)
    await settle(hub)


async def idle(hub: HubUnderTest, plan: Plan, out: dict[str, Any], *, is_reference: bool) -> None:
    """RSS per idle connection at both sizes, into ``out``."""
    budget = plan.ref_idle_budget if is_reference else plan.idle_budget
    conc = plan.connect_concurrency
    out["idle_small"] = await idle_rss(
        hub, plan.idle_small, key=ACCESS_KEY, crypto_key=None, budget=budget, concurrency=conc
    )
    await settle(hub)
    if hub.psk_key is None:
        out["idle_big"] = {
            "target": plan.idle_big,
            "na": "not run: no pre-shared-key client (add-client sets a password) "
            "and this many password handshakes exceed the budget",
        }
    else:
        out["idle_big"] = await idle_rss(
            hub,
            plan.idle_big,
            key=hub.psk_key,
            crypto_key=CRYPTO_KEY,
            budget=budget,
            concurrency=conc,
        )


# -- report ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One table row: how to read the figure and which way is better."""

    label: str
    path: tuple[str, str]
    unit: str
    higher_is_better: bool


def rows(plan: Plan) -> list[Row]:
    """The table rows for ``plan``."""
    n = plan.satellites
    w = plan.window
    return [
        Row(
            f"1 satellite: msg/s ({w} in flight) [L password]",
            ("one_rate", "msgs_per_s"),
            "/s",
            True,
        ),
        Row("1 satellite: round trip p50 (1 in flight)", ("one_rtt", "rtt_p50_ms"), " ms", False),
        Row("1 satellite: round trip p99 (1 in flight)", ("one_rtt", "rtt_p99_ms"), " ms", False),
        Row(f"{n} satellites: msg/s (1 in flight each) [L]", ("many", "msgs_per_s"), "/s", True),
        Row(f"{n} satellites: round trip p50", ("many", "rtt_p50_ms"), " ms", False),
        Row(f"{n} satellites: round trip p99", ("many", "rtt_p99_ms"), " ms", False),
        Row(
            f"hub CPU per round trip ({w} in flight)",
            ("one_rate", "hub_cpu_ms_per_msg"),
            " ms",
            False,
        ),
        Row(
            f"hub CPU per round trip ({n} satellites)", ("many", "hub_cpu_ms_per_msg"), " ms", False
        ),
        Row("password handshake p50 [L]", ("handshake", "p50_ms"), " ms", False),
        Row("password handshake p99 [L]", ("handshake", "p99_ms"), " ms", False),
        Row(
            f"RSS per idle conn @ {plan.idle_small:,} [L password]",
            ("idle_small", "kib_per_connection"),
            " KiB",
            False,
        ),
        Row(
            f"RSS per idle conn @ {plan.idle_big:,} [L pre-shared key]",
            ("idle_big", "kib_per_connection"),
            " KiB",
            False,
        ),
    ]


def cell(result: dict[str, Any] | None, path: tuple[str, str]) -> tuple[float | None, str]:
    """The figure at ``path`` and its printed form (``n/a (reason)`` when absent)."""
    if result is None:
        return None, "n/a (not run)"
    if "error" in result:
        return None, f"n/a ({result['error']})"
    section = result.get(path[0], {})
    value = section.get(path[1])
    if "na" in section:
        return None, f"n/a ({section['na']})"
    if value is None:
        return None, "n/a (no data)"
    return float(value), ""


def fmt(value: float, unit: str) -> str:
    """Print a figure with sensible precision."""
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    else:
        text = f"{value:,.2f}" if abs(value) >= 1 else f"{value:.3f}"
    return text + unit


def table(plan: Plan, ours: dict[str, Any] | None, ref: dict[str, Any] | None) -> list[dict]:
    """Rows as dicts: metric, ours, reference, ratio (how many times ours is better)."""
    out = []
    for row in rows(plan):
        a, a_text = cell(ours, row.path)
        b, b_text = cell(ref, row.path)
        ratio = None
        if a and b:
            ratio = a / b if row.higher_is_better else b / a
        out.append(
            {
                "metric": row.label,
                "ours": a,
                "reference": b,
                "ratio": ratio,
                "ours_text": a_text or fmt(a or 0.0, row.unit),
                "reference_text": b_text or fmt(b or 0.0, row.unit),
                "ratio_text": f"{ratio:,.1f}x" if ratio else "n/a",
            }
        )
    return out


def print_table(lines: list[dict], notes: list[str]) -> None:
    """Print the table (metric, ours, reference, ratio = times ours is better)."""
    header = ("metric", "ours", "reference", "ratio (ours better by)")
    cols = [[r["metric"], r["ours_text"], r["reference_text"], r["ratio_text"]] for r in lines]
    widths = [max(len(header[i]), *(len(c[i]) for c in cols)) for i in range(4)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for c in cols:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)))
    for note in notes:
        print(f"note: {note}")
    sys.stdout.flush()


# -- main ---------------------------------------------------------------------------------


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    """A throwaway directory, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="hivemind-bench-hub-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


async def run_one(
    name: str,
    start: Callable[[Processes, Path], Awaitable[HubUnderTest]],
    plan: Plan,
    tmp: Path,
    budget: float,
    *,
    idle_only: bool = False,
) -> dict[str, Any]:
    """Start one hub, measure it within ``budget`` seconds, stop it."""
    procs = Processes()
    try:
        with trio.fail_after(budget):
            hub = await start(procs, tmp / name)
            result = await bench_hub(
                hub, plan, is_reference=name == "reference", idle_only=idle_only
            )
            result["hub_pid_rss_kib_end"] = rss_kib(hub.proc.pid)
            return result
    except (trio.TooSlowError, RuntimeError, OSError, ConnectionError, ProtocolError) as exc:
        print(f"{name}: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return {"error": f"{type(exc).__name__}: {str(exc)[:80]}"}
    finally:
        procs.close()


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    """``measure``, stopped cleanly (children reaped) on SIGTERM or SIGHUP."""
    result: dict[str, Any] = {"error": "interrupted by a signal"}

    async def body(scope: trio.CancelScope) -> None:
        result.clear()
        result.update(await measure(args))
        scope.cancel()

    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGHUP) as signals:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(body, nursery.cancel_scope)
            async for _ in signals:
                print("interrupted: stopping every child process", file=sys.stderr)
                result.clear()
                result["error"] = "interrupted by a signal"
                nursery.cancel_scope.cancel()
                break
    return result


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Start the bus, then each selected hub in turn; return every figure."""
    plan = QUICK if args.quick else FULL
    py = peers.interop_python()
    procs = Processes()
    figures: dict[str, Any] = {"plan": plan.__dict__, "quick": args.quick}
    with scratch() as tmp:
        try:
            bus, (bus_proc,) = start_bus(procs, tmp / "bus", py)
            await ready_bus(procs, bus, bus_proc, py)
            with trio.fail_after(60):
                figures["bus_alone"] = await bus_alone(bus, plan.window, plan.pass_seconds)
            budget = args.budget or (60.0 if args.quick else 900.0)
            ours = ref = None
            if args.only in ("both", "ours"):
                ours = await run_one(
                    "ours",
                    lambda p, r: start_ours(p, r, bus),
                    plan,
                    tmp,
                    budget,
                    idle_only=args.idle_only,
                )
            if args.only in ("both", "reference"):
                ref = await run_one(
                    "reference",
                    lambda p, r: start_reference(p, r, bus, py),
                    plan,
                    tmp,
                    budget,
                    idle_only=args.idle_only,
                )
        finally:
            procs.close()
    lines = table(plan, ours, ref)
    notes = [*(ours or {}).get("notes", []), *(ref or {}).get("notes", [])]
    alone = figures["bus_alone"]
    notes.append(
        f"ceiling without any hub (OVOS bus + responder alone, {alone['window']} in flight): "
        f"{alone['msgs_per_s']:,.0f} msg/s"
    )
    notes.append("L = legacy v1 wire profile (what released clients speak)")
    notes.append("hubs, bus, responder and load generator share this machine's cores")
    print_table(lines, notes)
    figures.update(ours=ours, reference=ref, table=lines)
    return figures


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced counts (smoke run)")
    parser.add_argument("--only", choices=("both", "ours", "reference"), default="both")
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    parser.add_argument("--budget", type=float, help="seconds allowed per hub (default by mode)")
    parser.add_argument(
        "--idle-only", action="store_true", help="measure only the RSS per idle connection"
    )
    args = parser.parse_args(argv)
    raise_nofile()
    figures = trio.run(amain, args)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    failed = [k for k in ("ours", "reference") if (figures.get(k) or {}).get("error")]
    return 1 if failed or "error" in figures else 0


if __name__ == "__main__":
    sys.exit(main())
