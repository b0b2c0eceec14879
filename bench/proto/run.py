"""Per-message cost of each framing: hivemind_proto against hivemind-bus-client 0.4.x.

For BUS messages whose data holds a 64 B, 1 KiB or 64 KiB string, measures
messages per second for "seal" (encode + encrypt) and "open" (decrypt +
decode) on every framing:

* legacy JSON frames, JSON-B64, with each cipher (AES-GCM, CHACHA20-POLY1305);
* WIRE-1 binary frames, sealed and zlib-compressed (what released clients
  need to decode them), with each cipher;
* Noise transport frames carrying msgpack (ChaChaPoly suite); the released
  client has no Noise, so its column reads "n/a".

Our side runs the full sans-IO path: a satellite ``Connection`` ``send`` +
``data_to_send`` and a hub ``Connection`` ``receive_frame`` after a real
handshake between the two, so state checks and event objects are included.
The reference side runs the released client's own functions on the same
texts in a subprocess of the interop virtualenv (reference_driver.py, path
from ``HIVEMIND_INTEROP_PYTHON``). Both sides alternate seal and open for a
fixed time budget per case and size, one after the other (never at the same
time, so they do not compete for cores).

Usage: ``python bench/proto/run.py [--budget 0.3] [--json PATH] [--profile]``.
``--profile`` adds a cProfile listing of our 1 KiB cases.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import string
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hivemind_proto import (
    Cipher,
    Connection,
    HiveMessage,
    HubSettings,
    MessageReceived,
    MessageType,
    NoiseIdentity,
    Role,
    SatelliteSettings,
    State,
    StaticKeypair,
    TextEncoding,
    bus_message,
)
from seal_open_timing import measure

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
DEFAULT_INTEROP_PYTHON = REPO_ROOT / ".cache" / "interop-venv" / "bin" / "python"
SIZES = {"64 B": 64, "1 KiB": 1024, "64 KiB": 65536}
PASSWORD = "benchmark password"
NOISE_PSK = bytes(range(32))
TARGET_RATIO = 3.0


@dataclass(frozen=True)
class Case:
    """One framing: how both ends are configured, and whether the reference has it."""

    id: str
    cipher: Cipher
    binarize: bool = False
    noise: bool = False

    @property
    def reference(self) -> dict[str, str] | None:
        if self.noise:
            return None
        framing = "wire1" if self.binarize else "json"
        return {
            "id": self.id,
            "framing": framing,
            "cipher": self.cipher.value,
            "encoding": TextEncoding.JSON_B64.value,
        }


CASES = [
    Case("json-b64/aes-gcm", Cipher.AES_GCM),
    Case("json-b64/chacha20-poly1305", Cipher.CHACHA20_POLY1305),
    Case("wire1/aes-gcm", Cipher.AES_GCM, binarize=True),
    Case("wire1/chacha20-poly1305", Cipher.CHACHA20_POLY1305, binarize=True),
    Case("noise/msgpack", Cipher.CHACHA20_POLY1305, noise=True),
]


def sample_text(size: int) -> str:
    """A deterministic text of ``size`` ASCII characters (letters, digits, spaces)."""
    alphabet = string.ascii_letters + string.digits + "     "
    return "".join(random.Random(size).choices(alphabet, k=size))


def bench_message(text: str) -> HiveMessage:
    """The BUS message both sides time: an utterance holding ``text``."""
    return HiveMessage(
        MessageType.BUS, bus_message("recognizer_loop:utterance", {"utterances": [text]})
    )


# --------------------------------------------------------------------------- our side


def connected_pair(case: Case) -> tuple[Connection, Connection]:
    """A satellite and a hub ``Connection`` after a complete handshake."""
    hub_noise = NoiseIdentity(StaticKeypair.generate(os.urandom), psk=NOISE_PSK)
    sat_noise = NoiseIdentity(StaticKeypair.generate(os.urandom), psk=NOISE_PSK)
    hub = Connection(
        Role.HUB,
        HubSettings(
            hello={"pubkey": None, "peer": "bench", "node_id": "bench-hub"},
            password=PASSWORD,
            allowed_ciphers=(case.cipher,),
            allowed_encodings=(TextEncoding.JSON_B64,),
            binarize=case.binarize,
            noise=hub_noise if case.noise else None,
        ),
        rng=os.urandom,
    )
    satellite = Connection(
        Role.SATELLITE,
        SatelliteSettings(
            password=PASSWORD,
            hello={"pubkey": None, "session": {"session_id": "bench"}, "site_id": "bench"},
            ciphers=(case.cipher,),
            encodings=(TextEncoding.JSON_B64,),
            binarize=case.binarize,
            noise=sat_noise if case.noise else None,
            require_noise=case.noise,
        ),
        rng=os.urandom,
    )
    hub.start()
    for _ in range(8):
        moved = False
        for source, target in ((hub, satellite), (satellite, hub)):
            for frame in source.data_to_send():
                target.receive_frame(frame)
                moved = True
        if not moved:
            break
    if hub.state is not State.READY or satellite.state is not State.READY:
        raise RuntimeError(f"{case.id}: the handshake did not complete")
    return satellite, hub


def _one_way(sender: Connection, receiver: Connection) -> Callable[[HiveMessage], Any]:
    def seal(message: HiveMessage) -> Any:
        sender.send(message)
        (frame,) = sender.data_to_send()
        return frame

    return seal


def check_ours(case: Case, sender: Connection, receiver: Connection, message: HiveMessage) -> None:
    """One round trip, checked, before anything is timed."""
    frame = _one_way(sender, receiver)(message)
    if case.binarize != isinstance(frame, bytes) and not case.noise:
        raise AssertionError(f"{case.id}: unexpected frame type {type(frame).__name__}")
    (event,) = receiver.receive_frame(frame)
    if not isinstance(event, MessageReceived) or event.message != message:
        raise AssertionError(f"{case.id}: our pipeline did not round-trip")


def measure_ours(
    sender: Connection, receiver: Connection, message: HiveMessage, budget: float
) -> dict[str, float]:
    """Time our seal and open of ``message`` (see :func:`seal_open_timing.measure`)."""
    return measure(_one_way(sender, receiver), receiver.receive_frame, message, budget)


def run_ours(budget: float) -> dict[str, dict[str, dict[str, float]]]:
    results: dict[str, dict[str, dict[str, float]]] = {}
    for case in CASES:
        sender, receiver = connected_pair(case)
        results[case.id] = {}
        for label, size in SIZES.items():
            message = bench_message(sample_text(size))
            check_ours(case, sender, receiver, message)
            results[case.id][label] = measure_ours(sender, receiver, message, budget)
    return results


def profile_ours(budget: float, size: str = "1 KiB", top: int = 14) -> str:
    """cProfile listings of our cases at one size (cumulative time)."""
    out = io.StringIO()
    for case in CASES:
        sender, receiver = connected_pair(case)
        message = bench_message(sample_text(SIZES[size]))
        profiler = cProfile.Profile()
        profiler.enable()
        measure_ours(sender, receiver, message, budget)
        profiler.disable()
        out.write(f"\n=== {case.id} @ {size} ===\n")
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


# --------------------------------------------------------------------------- reference side


def interop_python() -> str | None:
    path = os.environ.get("HIVEMIND_INTEROP_PYTHON") or str(DEFAULT_INTEROP_PYTHON)
    return path if Path(path).exists() else None


def run_reference(budget: float) -> dict[str, Any] | None:
    """The released client's numbers, or None when the interop venv is missing."""
    python = interop_python()
    if python is None:
        print("interop virtualenv not found: reference column is n/a", file=sys.stderr)
        return None
    request = {
        "key": os.urandom(32).hex(),
        "budget": budget,
        "texts": {label: sample_text(size) for label, size in SIZES.items()},
        "cases": [c.reference for c in CASES if c.reference is not None],
    }
    proc = subprocess.run(
        [python, str(HERE / "reference_driver.py")],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"reference driver failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout)


# --------------------------------------------------------------------------- report


def rows(ours: dict[str, Any], reference: dict[str, Any] | None) -> list[dict[str, Any]]:
    out = []
    for case in CASES:
        for label in SIZES:
            for op in ("seal", "open"):
                mine = ours[case.id][label][op]
                ref = None
                if reference is not None and case.id in reference:
                    ref = reference[case.id][label][op]
                out.append(
                    {
                        "case": case.id,
                        "size": label,
                        "op": op,
                        "ours": round(mine, 1),
                        "reference": None if ref is None else round(ref, 1),
                        "ratio": None if ref is None else round(mine / ref, 2),
                    }
                )
    return out


def _fmt(value: float | None, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:,.0f}{suffix}" if not suffix else f"{value}{suffix}"


def print_table(table: list[dict[str, Any]]) -> None:
    headers = ("case", "size", "op", "ours msgs/s", "reference msgs/s", "ratio")
    cells = [
        (
            r["case"],
            r["size"],
            "encode+encrypt" if r["op"] == "seal" else "decrypt+decode",
            _fmt(r["ours"]),
            _fmt(r["reference"]),
            _fmt(r["ratio"], "x"),
        )
        for r in table
    ]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
        print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
        for cell in cells:
            print("  ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)))
        return
    rich_table = Table(title="hivemind_proto vs hivemind-bus-client 0.4.x, per message")
    for i, header in enumerate(headers):
        rich_table.add_column(header, justify="right" if i >= 3 else "left")
    for row, cell in zip(table, cells, strict=True):
        low = row["ratio"] is not None and row["ratio"] < TARGET_RATIO
        rich_table.add_row(*cell, style="yellow" if low else None)
    Console(width=110).print(rich_table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=0.3, help="seconds per case and size")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--profile", action="store_true", help="cProfile our 1 KiB cases")
    args = parser.parse_args(argv)
    if not 0 < args.budget <= 5:
        parser.error("--budget must be in (0, 5] seconds")
    started = time.perf_counter()
    ours = run_ours(args.budget)
    reference = run_reference(args.budget)
    table = rows(ours, reference)
    print_table(table)
    print(f"total {time.perf_counter() - started:.1f} s, budget {args.budget} s per cell")
    if args.profile:
        print(profile_ours(args.budget))
    if args.json is not None:
        document = {
            "budget_seconds": args.budget,
            "python": sys.version.split()[0],
            "sizes": SIZES,
            "rows": table,
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
