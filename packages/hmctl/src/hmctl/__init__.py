"""hmctl: the command line for HiveMind hubs and room services.

``cli`` is the top-level group (console scripts ``hmctl`` and ``hivemind``);
``hub`` is the hub subgroup, also installed as ``hivemind-core`` so scripts
written for the upstream hub keep working. The room-service commands are a
thin shell over :mod:`hmctl.client`. Exit codes are documented in
:mod:`hmctl._runtime` (hub) and :mod:`hmctl._room_base` (room service).
"""

from __future__ import annotations

import click

from . import (  # noqa: F401  (registers the hub, rooms peers and room share-link commands)
    _cmd_peers,
    _cmd_share,
    _hub_acl,
    _hub_ops,
)
from ._cmd_account import register as _register_account
from ._cmd_admin import admin
from ._cmd_agents import agents, runs
from ._cmd_eval import eval_group
from ._cmd_room import room
from ._cmd_serve import rooms, up
from ._cmd_trust import trust
from ._hub import add_common_options, hub
from ._room_base import options
from ._runtime import HubGroup, get_runtime

__all__ = ["cli", "hub"]


@click.group(cls=HubGroup)
@click.option("--json", "json_output", is_flag=True, help="Print machine-readable JSON.")
@click.option(
    "-y",
    "--yes",
    is_flag=True,
    help="Approve compose hashes, first-use room acceptance and confirmations.",
)
@click.option(
    "--profile",
    default=None,
    metavar="NAME",
    help="Use this profile (env HIVEMIND_PROFILE; default: the active one).",
)
@click.option(
    "--dangerously-skip-attestations",
    "skip_attestations",
    is_flag=True,
    help="Skip service attestation and room acceptance checks (env "
    "HIVEMIND_NO_TRUST_CHECK). Room signatures are still verified.",
)
@click.option(
    "--allow-dev-attestation",
    "allow_dev",
    is_flag=True,
    help="Accept development attestations from services on other machines "
    "(env HIVEMIND_ALLOW_DEV_ATTESTATION); answers are labelled UNATTESTED (dev).",
)
@click.version_option(package_name="hmctl")
@click.pass_context
def cli(
    ctx: click.Context,
    json_output: bool,
    yes: bool,
    profile: str | None,
    skip_attestations: bool,
    allow_dev: bool,
) -> None:
    """Manage HiveMind hubs and attested room services."""
    get_runtime(ctx).json_output = json_output
    opts = options(ctx)
    opts.yes = opts.yes or yes
    opts.profile = profile or opts.profile
    opts.skip_attestations = opts.skip_attestations or skip_attestations
    opts.allow_dev = opts.allow_dev or allow_dev


add_common_options(hub)
cli.add_command(hub)
_register_account(cli)
for _command in (room, agents, runs, trust, admin, rooms, up):
    cli.add_command(_command)
cli.add_command(eval_group)
