"""Per-invocation state, error classes with stable exit codes, and output helpers.

Exit codes (stable; scripts may rely on them):

===  ==========================================================
0    success, including "already in that state" notices
1    runtime failure (``HmctlError``) or an aborted prompt
2    usage error: bad option, bad value, conflicting options
3    the client (NODE_ID) does not exist
4    conflict: the access key is used by another client
5    ``server.json`` is invalid or unreadable
6    the client database failed
7    the feature is not available in this build
70   unexpected internal error (reported without a traceback)
===  ==========================================================
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import click
from hivemind_hub import (
    ClientNotFoundError,
    ConfigError,
    DuplicateAccessKeyError,
    HubError,
    InvalidClientError,
    StoreError,
)
from rich.console import Console

__all__ = [
    "ConfigFileError",
    "ConflictError",
    "HmctlError",
    "HubGroup",
    "InternalError",
    "InvalidValueError",
    "NotFoundError",
    "Runtime",
    "StoreFailureError",
    "UnavailableError",
    "get_runtime",
]

_log = logging.getLogger("hmctl")


class HmctlError(click.ClickException):
    """A runtime failure (exit code 1)."""

    exit_code: ClassVar[int] = 1


class InvalidValueError(HmctlError):
    """A value given on the command line is invalid (exit code 2)."""

    exit_code = 2


class NotFoundError(HmctlError):
    """The requested client does not exist (exit code 3)."""

    exit_code = 3


class ConflictError(HmctlError):
    """The access key is used by another client (exit code 4)."""

    exit_code = 4


class ConfigFileError(HmctlError):
    """``server.json`` is invalid (exit code 5)."""

    exit_code = 5


class StoreFailureError(HmctlError):
    """The client database failed (exit code 6)."""

    exit_code = 6


class UnavailableError(HmctlError):
    """The requested feature is not part of this build (exit code 7)."""

    exit_code = 7


class InternalError(HmctlError):
    """An unexpected error, reported without a traceback (exit code 70)."""

    exit_code = 70


def translate(exc: HubError) -> HmctlError:
    """Map a library error onto the CLI error carrying its exit code."""
    table: list[tuple[type[HubError], type[HmctlError]]] = [
        (ClientNotFoundError, NotFoundError),
        (DuplicateAccessKeyError, ConflictError),
        (InvalidClientError, InvalidValueError),
        (ConfigError, ConfigFileError),
        (StoreError, StoreFailureError),
    ]
    for source, target in table:
        if isinstance(exc, source):
            return target(str(exc))
    return HmctlError(str(exc))


class HubGroup(click.Group):
    """A click group that turns every error into a clean message and exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command, translating library and unexpected errors."""
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except HubError as exc:
            raise translate(exc) from exc
        except (KeyboardInterrupt, EOFError):
            raise click.Abort() from None
        except Exception as exc:
            if os.environ.get("HMCTL_DEBUG"):
                raise
            _log.debug("internal error", exc_info=True)
            message = f"internal error: {exc.__class__.__name__}: {exc}"
            raise InternalError(message) from exc


@dataclass
class Runtime:
    """What one invocation shares between the group and its commands.

    Attributes:
        json_output: Print machine-readable JSON instead of rich output.
        db_backend: Backend chosen with ``--db-backend`` (None: from server.json).
        console: Rich console for normal output.
        err_console: Rich console for notices and warnings (stderr).
    """

    json_output: bool = False
    db_backend: str | None = None
    console: Console = field(default_factory=lambda: _console(stderr=False))
    err_console: Console = field(default_factory=lambda: _console(stderr=True))

    def emit(self, data: Any, human: Callable[[Console], None]) -> None:
        """Print ``data`` as JSON in ``--json`` mode, else call ``human``."""
        if self.json_output:
            click.echo(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))
        else:
            human(self.console)

    def notice(self, text: str) -> None:
        """Print an informational line (stderr in JSON mode, so stdout stays JSON)."""
        target = self.err_console if self.json_output else self.console
        target.print(text, markup=False, highlight=False)

    def warn(self, text: str) -> None:
        """Print a warning on stderr."""
        self.err_console.print(f"WARNING: {text}", markup=False, highlight=False)


def _console(stderr: bool) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else 200
    return Console(file=stream, width=width, soft_wrap=False)


def get_runtime(ctx: click.Context) -> Runtime:
    """Return the invocation's :class:`Runtime`, creating it on first use."""
    root = ctx.find_root()
    if not isinstance(root.obj, Runtime):
        root.obj = Runtime()
    return root.obj
