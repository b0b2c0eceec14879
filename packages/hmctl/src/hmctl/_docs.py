"""Generate ``docs/cli.md`` from the commands' own help.

Usage::

    python -m hmctl._docs docs/cli.md           # write
    python -m hmctl._docs --check docs/cli.md   # exit 1 if the file is stale

The page lists every command, depth first in name order, each with its
``--help`` text rendered at a fixed width so the output is stable.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import click

__all__ = ["iter_commands", "render"]

_WIDTH = 100
_HEADER = """\
# hmctl command reference

Generated from the commands' help by `make docs` (`python -m hmctl._docs docs/cli.md`);
do not edit by hand. Exit codes are listed in `packages/hmctl/README.md`.
"""


def iter_commands(
    command: click.Command, path: tuple[str, ...] = ("hmctl",), parent: click.Context | None = None
) -> Iterator[tuple[tuple[str, ...], click.Command, click.Context]]:
    """Yield (path, command, context) for ``command`` and every subcommand."""
    ctx = click.Context(
        command,
        info_name=path[-1],
        parent=parent,
        terminal_width=_WIDTH,
        max_content_width=_WIDTH,
    )
    yield path, command, ctx
    if isinstance(command, click.Group):
        for name in sorted(command.list_commands(ctx)):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from iter_commands(sub, (*path, name), ctx)


def render(root: click.Command | None = None) -> str:
    """The Markdown text of the command reference."""
    if root is None:
        from hmctl import cli

        root = cli
    parts = [_HEADER]
    for path, command, ctx in iter_commands(root):
        title = " ".join(path)
        summary = command.get_short_help_str(limit=_WIDTH)
        parts.append(f"## `{title}`\n\n{summary}\n\n```text\n{command.get_help(ctx)}\n```\n")
    return "\n".join(parts)


def main(argv: list[str]) -> int:
    """Write (or with ``--check`` compare) the reference at the given path."""
    check = "--check" in argv
    paths = [a for a in argv if a != "--check"]
    if len(paths) != 1:
        print("usage: python -m hmctl._docs [--check] PATH", file=sys.stderr)
        return 2
    target = Path(paths[0])
    text = render()
    if check:
        current = target.read_text("utf-8") if target.exists() else ""
        if current != text:
            print(f"{target} is stale: run `make docs`", file=sys.stderr)
            return 1
        return 0
    target.write_text(text, "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
