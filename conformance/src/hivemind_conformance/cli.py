"""``hivemind-conformance``: run the suite against a hub or a client.

Exit status: 0 when no case FAILed (and, with ``--strict``, none was
NON_STRICT); 1 otherwise; 2 for usage errors.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import click
import trio
from rich.console import Console

from ._case import Case, Profile
from ._clientctx import client_context_factory, exec_launcher
from ._config import Credentials, RunConfig
from ._report import exit_status, render_console, to_json, to_junit, write_json, write_junit
from ._runner import CaseResult, check_hub, run_cases, select

_PROFILE = click.Choice(["L", "S", "N"], case_sensitive=False)


def _common(fn: Any) -> Any:
    options = [
        click.option(
            "--profile",
            type=_PROFILE,
            default="S",
            show_default=True,
            help="highest wire profile to check (L < S < N)",
        ),
        click.option(
            "--cases",
            "patterns",
            multiple=True,
            metavar="PATTERN",
            help="case id prefix or glob (repeatable)",
        ),
        click.option("--list", "list_only", is_flag=True, help="list the selected cases and exit"),
        click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path)),
        click.option("--junit", "junit_path", type=click.Path(dir_okay=False, path_type=Path)),
        click.option("--strict", is_flag=True, help="NON_STRICT (a broken SHOULD) also fails"),
        click.option(
            "--timeout",
            type=float,
            default=30.0,
            show_default=True,
            help="absolute timeout per case, seconds",
        ),
        click.option("--reply-timeout", type=float, default=5.0, show_default=True),
        click.option(
            "--close-timeout",
            type=float,
            default=5.0,
            show_default=True,
            help="seconds a peer has to close when it must",
        ),
        click.option(
            "--quiet-timeout",
            type=float,
            default=1.0,
            show_default=True,
            help="how long to watch for something that must not happen",
        ),
        click.option("--seed", type=int, default=None, help="seed (random when omitted)"),
        click.option("--concurrency", type=int, default=4, show_default=True),
        click.option(
            "--nonce-samples",
            type=int,
            default=1000,
            show_default=True,
            help="frames collected by the nonce checks (H19, C12)",
        ),
        click.option(
            "--bulk-rate",
            type=float,
            default=100.0,
            show_default=True,
            help="frames per second in bulk checks (stay under the peer's rate limit)",
        ),
        click.option("--verbose", "-v", is_flag=True),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@click.group()
def main() -> None:
    """Conformance suite for HiveMind hubs and clients (see docs/spec)."""


@main.command()
@click.argument("url")
@click.option("--access-key", required=True, help="test client provisioned on the hub")
@click.option("--password", required=True)
@click.option("--admin-key", help="optional admin client (BROADCAST checks)")
@click.option("--admin-password")
@click.option("--other-key", help="optional client with can_propagate/can_escalate false")
@click.option("--other-password")
@click.option("--hub-site-id", help="the hub's own site id (site-targeted checks)")
@click.option("--max-frame-bytes", type=int, default=10 * 1024 * 1024, show_default=True)
@click.option(
    "--handshake-timeout",
    type=float,
    default=10.0,
    show_default=True,
    help="the hub's handshake timeout, seconds",
)
@_common
def hub(url: str, **opts: Any) -> None:
    """Test the hub at URL (ws://host:port) as a client."""
    config = _config(url, opts)
    from .cases import HUB_CASES

    _run(config, opts, "hub", HUB_CASES, lambda cases: check_hub(config, cases=cases))


@main.command()
@click.option("--access-key", required=True, help="credentials the client under test presents")
@click.option("--password", required=True)
@click.option("--exec", "command", help='command launched per case, e.g. "my-client {url}"')
@click.option("--port", type=int, default=0, help="listen on this port (without --exec)")
@click.option(
    "--launch-timeout",
    type=float,
    default=20.0,
    show_default=True,
    help="seconds a launched client has to connect",
)
@_common
def client(command: str | None, port: int, **opts: Any) -> None:
    """Play a scripted hub for a client under test."""
    if not command and not port:
        raise click.UsageError("give --exec COMMAND (preferred) or --port N")
    launch_timeout = opts.pop("launch_timeout")
    config = _replace(_config(command or f"port {port}", opts), launch_timeout=launch_timeout)
    if not command:
        config = _replace(config, concurrency=1)
    from .cases import CLIENT_CASES

    launch = partial(exec_launcher, command) if command else _announce(port)
    factory = client_context_factory(launch, port=0 if command else port)
    _run(config, opts, "client", CLIENT_CASES, lambda cases: run_cases(cases, config, factory))


@main.command()
@_common
def reference(**opts: Any) -> None:
    """Run the hub cases against the built-in reference hub and the client cases
    against the reference testee (what ``make conformance`` runs)."""
    from .selfcheck import run_reference

    config = _config("reference", opts)
    hub_results, client_results = trio.run(run_reference, config, tuple(opts["patterns"]))
    console = _console()
    render_console(console, hub_results, title="reference hub", seed=config.seed)
    render_console(console, client_results, title="reference testee", seed=config.seed)
    results = hub_results + client_results
    _write_outputs(opts, results, "reference", "reference", config)
    raise SystemExit(exit_status(results, opts["strict"]))


def _announce(port: int) -> Any:
    @asynccontextmanager
    async def launch(url: str) -> AsyncIterator[None]:
        click.echo(f"connect the client under test to ws://127.0.0.1:{port}", err=True)
        yield

    return launch


def _console() -> Console:
    return Console(no_color=bool(os.environ.get("NO_COLOR")), highlight=False)


def _config(target: str, opts: dict[str, Any]) -> RunConfig:
    seed = opts["seed"] if opts.get("seed") is not None else int.from_bytes(os.urandom(4), "big")
    creds = Credentials(opts.pop("access_key", "conformance"), opts.pop("password", "conformance"))
    admin = _creds(opts.pop("admin_key", None), opts.pop("admin_password", None), "--admin")
    other = _creds(opts.pop("other_key", None), opts.pop("other_password", None), "--other")
    return RunConfig(
        target=target,
        client=creds,
        admin=admin,
        other=other,
        profile=Profile(opts["profile"].upper()),
        timeout=opts["timeout"],
        reply_timeout=opts["reply_timeout"],
        quiet_timeout=opts["quiet_timeout"],
        close_timeout=opts["close_timeout"],
        seed=seed,
        hub_site_id=opts.pop("hub_site_id", None),
        max_frame_bytes=opts.pop("max_frame_bytes", 10 * 1024 * 1024),
        handshake_timeout=opts.pop("handshake_timeout", 10.0),
        nonce_samples=opts["nonce_samples"],
        bulk_rate=opts["bulk_rate"],
        concurrency=opts["concurrency"],
    )


def _creds(key: str | None, password: str | None, flag: str) -> Credentials | None:
    if key is None and password is None:
        return None
    if not key or not password:
        raise click.UsageError(f"{flag}-key and {flag}-password go together")
    return Credentials(key, password)


def _replace(config: RunConfig, **changes: Any) -> RunConfig:
    import dataclasses

    return dataclasses.replace(config, **changes)


def _run(
    config: RunConfig, opts: dict[str, Any], mode: str, catalogue: Sequence[Case], go: Any
) -> None:
    cases = select(catalogue, config.profile, opts["patterns"])
    console = _console()
    if opts["list_only"]:
        for case in cases:
            console.print(f"{case.id}  {case.level.value:6} {case.profile.value}  {case.title}")
        return
    if not cases:
        raise click.UsageError("no case matches the selection")
    results: list[CaseResult] = trio.run(go, cases)
    render_console(
        console,
        results,
        title=f"{mode}: {config.target}",
        seed=config.seed,
        verbose=opts["verbose"],
    )
    _write_outputs(opts, results, mode, config.target, config)
    raise SystemExit(exit_status(results, opts["strict"]))


def _write_outputs(
    opts: dict[str, Any], results: list[CaseResult], mode: str, target: str, config: RunConfig
) -> None:
    if opts["json_path"]:
        report = to_json(
            results,
            mode=mode,
            target=target,
            profile=config.profile.value,
            seed=config.seed,
            strict=opts["strict"],
        )
        write_json(opts["json_path"], report)
    if opts["junit_path"]:
        write_junit(
            opts["junit_path"],
            to_junit(results, suite=f"hivemind-conformance {mode}", strict=opts["strict"]),
        )
