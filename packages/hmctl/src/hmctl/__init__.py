"""hmctl: the command line for HiveMind hubs and room services.

``cli`` is the top-level group (console scripts ``hmctl`` and ``hivemind``);
``hub`` is the hub subgroup, also installed as ``hivemind-core`` so scripts
written for the upstream hub keep working. Exit codes are documented in
:mod:`hmctl._runtime`.
"""

from __future__ import annotations

import click

from . import _hub_acl, _hub_ops  # noqa: F401  (registers the hub commands)
from ._cmd_eval import eval_group
from ._hub import add_common_options, hub
from ._runtime import HubGroup, get_runtime

__all__ = ["cli", "hub"]


@click.group(cls=HubGroup)
@click.option("--json", "json_output", is_flag=True, help="Print machine-readable JSON.")
@click.version_option(package_name="hmctl")
@click.pass_context
def cli(ctx: click.Context, json_output: bool) -> None:
    """Manage HiveMind hubs and room services."""
    get_runtime(ctx).json_output = json_output


add_common_options(hub)
cli.add_command(hub)
cli.add_command(eval_group)
