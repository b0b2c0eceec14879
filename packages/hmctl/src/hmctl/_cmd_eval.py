"""``hmctl eval ...``: run the room eval scenarios and print a table and JSON.

The service is verified (fresh nonce) before the admin key goes to it, and
each run's signed attestation is verified as ``hmctl room ask`` does; a run
that does not verify fails its scenario. A service given with ``--service``
is checked against this machine's trust store (``hmctl trust``) and the
global trust options (``-y``, ``HIVEMIND_TRUST_HASH``, ``--allow-dev-attestation``).
A service the command starts itself is checked with a throw-away trust store
holding that service's own dev root; its first-use compose hash is approved
there, since this process built it.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import httpx
from hivemind_rooms.attestation import load_or_create_dev_provider
from hivemind_rooms.eval import (
    SCENARIOS,
    EvalError,
    VerificationError,
    dumps_report,
    local_service,
    run_scenarios,
    scenario_by_id,
    summary_table,
)
from hivemind_rooms.settings import Settings
from rich.console import Console
from rich.table import Table

from ._room_base import AttestationInvalidError, options
from ._runtime import get_runtime
from .client import LocalState, TrustOptions
from .client.evaluate import ScenarioVerifier

__all__ = ["eval_group"]


class EvalFailed(click.ClickException):
    """At least one scenario failed (exit code 1)."""

    exit_code = 1


@click.group("eval")
def eval_group() -> None:
    """Evaluate a room service with room-native scenarios and deterministic graders."""


@eval_group.command("list")
def eval_list() -> None:
    """List the built-in scenarios."""
    for scenario in SCENARIOS:
        click.echo(f"{scenario.id}\t{scenario.title}")


@contextmanager
def _target(
    ctx: click.Context, service: str | None, admin_key: str | None, runner: str, local: bool
) -> Iterator[tuple[str, str, ScenarioVerifier]]:
    if service:
        if not admin_key:
            raise click.UsageError("--admin-key (or HIVEMIND_ADMIN_KEY) is needed with --service")
        opts = options(ctx)
        verifier = ScenarioVerifier(service, opts.state, opts.trust(get_runtime(ctx)))
        yield service, admin_key, verifier
        return
    key = secrets.token_urlsafe(24)
    saved = {n: os.environ.get(n) for n in ("HIVEMIND_RUNNER", "HIVEMIND_ALLOW_LOCAL_RUNNER")}
    os.environ["HIVEMIND_RUNNER"] = runner  # read by the started service's run engine
    os.environ["HIVEMIND_ALLOW_LOCAL_RUNNER"] = "1" if local else "0"
    try:
        with tempfile.TemporaryDirectory(prefix="hmctl-eval-") as tmp:
            data = Path(tmp) / "service"
            data.mkdir(mode=0o700)
            settings = Settings(data_dir=data, admin_key=key, host="127.0.0.1", port=0)
            with local_service(settings) as url:
                yield url, key, _own_service_verifier(url, data, Path(tmp) / "client")
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _own_service_verifier(url: str, data: Path, state_dir: Path) -> ScenarioVerifier:
    """A verifier trusting only the dev root of the service this process started."""
    state = LocalState(state_dir)
    state.add_dev_root(load_or_create_dev_provider(data, "{}").root_public_key_b64())
    return ScenarioVerifier(url, state, TrustOptions(assume_yes=True))


@eval_group.command("run")
@click.option("--service", default=None, help="Base URL of a room service (default: start one).")
@click.option("--admin-key", envvar="HIVEMIND_ADMIN_KEY", default=None, help="Its admin key.")
@click.option(
    "--agents-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default="agents",
    show_default=True,
    help="The agents/ directory (agents and pack.py).",
)
@click.option("--scenario", "scenario_ids", multiple=True, help="Run only these (repeatable).")
@click.option("--runner", default="auto", show_default=True, help="Sandbox of a started service.")
@click.option("--allow-local-runner", is_flag=True, help="Allow the unsandboxed local runner.")
@click.option("--timeout", type=click.FloatRange(1), default=600.0, show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the JSON report here ('-' for stdout).")  # fmt: skip
@click.pass_context
def eval_run(ctx: click.Context, **o: Any) -> None:
    """Verify the service, run scenarios and verify each run's signed attestation.

    Prints a table per scenario and writes the JSON report. A run whose
    attestation does not verify fails its scenario (a critical finding); a
    service that does not verify gets no key and no scenario (exit code 11).
    """
    try:
        chosen = [scenario_by_id(s) for s in o["scenario_ids"]] or list(SCENARIOS)
    except KeyError as exc:
        raise click.UsageError(f"unknown scenario {exc.args[0]!r}") from None
    target = _target(ctx, o["service"], o["admin_key"], o["runner"], o["allow_local_runner"])
    with target as (url, key, verifier), httpx.Client(base_url=url, timeout=60) as client:
        try:
            results = run_scenarios(
                client,
                chosen,
                admin_key=key,
                agents_dir=o["agents_dir"],
                verifier=verifier,
                timeout_s=o["timeout"],
            )
        except VerificationError as exc:
            raise AttestationInvalidError(f"{exc}\nno key and no scenario were sent") from None
        except EvalError as exc:
            raise click.ClickException(str(exc)) from None
    report = dumps_report(results)
    if o["json_path"] is not None and str(o["json_path"]) == "-":
        click.echo(report)
    else:
        if o["json_path"] is not None:
            o["json_path"].write_text(report + "\n")
        rows = summary_table(results)
        table = Table(title="hivemind room eval")
        for header in rows[0]:
            table.add_column(header, overflow="fold")
        for row in rows[1:]:
            table.add_row(*row)
        Console().print(table)
    if not all(r.passed for r in results):
        raise EvalFailed(f"{sum(not r.passed for r in results)} of {len(results)} scenarios failed")
