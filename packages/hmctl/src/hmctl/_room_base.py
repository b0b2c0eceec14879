"""Shared plumbing of the room-service commands: options, errors, output.

Exit codes of the room commands (stable; the hub group uses 1-7 and 70 with
the same meanings where they overlap):

===  ==============================================================
0    success
1    the service refused the request (other HTTP errors)
2    usage error: bad option, bad link, missing profile
3    not found (room, agent, run, tenant, profile)
4    conflict (409)
5    a local state file is invalid
7    not available in this build (e.g. room runs answer 501)
8    network failure: the service cannot be reached or timed out
9    refused by trust: attestation policy, unapproved hash, room not accepted
10   the run failed
11   attestation invalid: a signature, manifest, quote or run attestation
12   timeout: the run did not finish in time
13   access refused: unknown, revoked or insufficient credential (401/403)
14   payment required: no payer or insufficient balance (402)
70   unexpected internal error
===  ==============================================================
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click
from rich.table import Table
from rich.text import Text

from ._runtime import (
    ConfigFileError,
    ConflictError,
    HmctlError,
    HubGroup,
    InvalidValueError,
    NotFoundError,
    Runtime,
    UnavailableError,
    get_runtime,
)
from .client import (
    AccessRefused,
    AttestationInvalid,
    Conflict,
    InvalidState,
    LocalState,
    NetworkFailure,
    NotFound,
    PaymentRequired,
    Profile,
    RoomApi,
    RoomClientError,
    RoomTarget,
    RunFailed,
    RunsUnavailable,
    RunTimeout,
    ServiceGate,
    TrustOptions,
    TrustRefused,
    UsageProblem,
    VerifiedService,
)

__all__ = [
    "AccessRefusedError",
    "AttestationInvalidError",
    "NetworkError",
    "PaymentRequiredError",
    "RoomCommand",
    "RoomGroup",
    "RoomOptions",
    "RunFailedError",
    "RunTimeoutError",
    "TrustRefusedError",
    "env_flag",
    "json_option",
    "kv_table",
    "options",
    "parse_duration",
    "translate_client_error",
]

F = TypeVar("F", bound=Callable[..., Any])
_DURATION = re.compile(r"(\d{1,9})([smhd]?)")
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_TRUE = frozenset({"1", "true", "yes"})
_FALSE = frozenset({"0", "false", "no", ""})


class NetworkError(HmctlError):
    """The service cannot be reached (exit code 8)."""

    exit_code = 8


class TrustRefusedError(HmctlError):
    """Local trust policy refused to proceed (exit code 9)."""

    exit_code = 9


class RunFailedError(HmctlError):
    """The run failed (exit code 10)."""

    exit_code = 10


class AttestationInvalidError(HmctlError):
    """A signature or attestation failed verification (exit code 11)."""

    exit_code = 11


class RunTimeoutError(HmctlError):
    """The run did not finish in time (exit code 12)."""

    exit_code = 12


class AccessRefusedError(HmctlError):
    """The credential was refused (exit code 13)."""

    exit_code = 13


class PaymentRequiredError(HmctlError):
    """No payer or insufficient balance (exit code 14)."""

    exit_code = 14


_TABLE: list[tuple[type[RoomClientError], type[HmctlError]]] = [
    (UsageProblem, InvalidValueError),
    (InvalidState, ConfigFileError),
    (NetworkFailure, NetworkError),
    (TrustRefused, TrustRefusedError),
    (AttestationInvalid, AttestationInvalidError),
    (RunFailed, RunFailedError),
    (RunTimeout, RunTimeoutError),
    (AccessRefused, AccessRefusedError),
    (PaymentRequired, PaymentRequiredError),
    (NotFound, NotFoundError),
    (Conflict, ConflictError),
    (RunsUnavailable, UnavailableError),
]


def translate_client_error(exc: RoomClientError) -> HmctlError:
    """The CLI error (and exit code) of a client library error: one line plus a hint."""
    text = exc.message if not exc.hint else f"{exc.message}\nhint: {exc.hint}"
    for source, target in _TABLE:
        if isinstance(exc, source):
            return target(text)
    return HmctlError(text)


def env_flag(name: str) -> bool:
    """Read a boolean environment switch (``1/true/yes`` or ``0/false/no``).

    Raises:
        InvalidValueError: any other value.
    """
    raw = os.environ.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise InvalidValueError(f"{name} must be 1/true/yes or 0/false/no, got {raw!r}")


class RoomCommand(click.Command):
    """A command whose client library errors become clean CLI errors."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the callback, translating :class:`RoomClientError`."""
        try:
            return super().invoke(ctx)
        except RoomClientError as exc:
            error = translate_client_error(exc)
            if get_runtime(ctx).json_output:
                body = {"error": exc.message, "hint": exc.hint, "exit_code": error.exit_code}
                click.echo(json.dumps(body, sort_keys=True))
            raise error from None


class RoomGroup(HubGroup):
    """A group whose commands are :class:`RoomCommand` (and subgroups alike)."""

    command_class = RoomCommand
    group_class = type


@dataclass
class RoomOptions:
    """The global options that room commands read (stored in ``ctx.meta``).

    Attributes:
        profile: the explicit profile name (``--profile`` / ``HIVEMIND_PROFILE``).
        yes: ``-y``: approve compose hashes and confirmations without asking.
        skip_attestations: ``--dangerously-skip-attestations``.
        allow_dev: ``--allow-dev-attestation``.
        runtime: the invocation's output helpers (notices, prompts).

    Every client this object hands out that carries a credential (:meth:`api`,
    :meth:`open`) is made only after :meth:`verified` passed for its service:
    one :class:`~hmctl.client.ServiceGate` per invocation, so a command that
    makes several requests verifies its service once.
    """

    profile: str | None = None
    yes: bool = False
    skip_attestations: bool = False
    allow_dev: bool = False
    runtime: Runtime | None = field(default=None, repr=False)
    _gate: ServiceGate | None = field(default=None, repr=False)

    @property
    def state(self) -> LocalState:
        """The local state (a fresh reader each time: files may change)."""
        return LocalState()

    def profile_name(self) -> str:
        """The profile in use."""
        return self.state.active_name(self.profile)

    def load_profile(self) -> Profile:
        """The profile in use (it must exist)."""
        return self.state.load_profile(self.profile_name())

    def maybe_profile(self) -> Profile | None:
        """The profile in use, or None if none is configured."""
        try:
            return self.load_profile()
        except UsageProblem:
            return None

    def verified(self, service: str) -> VerifiedService:
        """Verify ``service`` (step 1, fresh nonce) before a key goes to it.

        Raises:
            TrustRefused: refused by the trust policy (exit code 9).
            AttestationInvalid: the attestation did not verify (exit code 11).
            NetworkFailure: the service could not be reached (exit code 8).
        """
        if self._gate is None:
            self._gate = ServiceGate(self.state, self.trust(self.runtime or Runtime()))
        return self._gate.check(service)

    def api(self, *, timeout: float = 30.0) -> RoomApi:
        """A client for the profile's service, with its key (the service verified first)."""
        profile = self.load_profile()
        self.verified(profile.service)
        return RoomApi(profile.service, profile.api_key, timeout=timeout)

    def open(self, target: RoomTarget, *, timeout: float = 30.0) -> RoomApi:
        """A client for a room target, with its credentials (the service verified first)."""
        self.verified(target.service)
        return target.api(timeout=timeout)

    def trust(self, rt: Runtime) -> TrustOptions:
        """Trust options for verification, with an interactive prompt on a TTY."""

        def confirm(question: str) -> bool:
            try:
                return click.confirm(question, default=False, err=True)
            except click.Abort:  # end of input: nobody said yes
                return False

        return TrustOptions(
            skip_attestations=self.skip_attestations,
            allow_dev=self.allow_dev,
            assume_yes=self.yes,
            trust_hash=os.environ.get("HIVEMIND_TRUST_HASH", "").strip(),
            confirm=confirm,
            notify=lambda text: rt.err_console.print(text, markup=False, highlight=False),
        )


_META_KEY = "hmctl.room_options"


def options(ctx: click.Context) -> RoomOptions:
    """The invocation's :class:`RoomOptions` (defaults from the environment)."""
    found = ctx.meta.get(_META_KEY)
    if found is None:
        found = RoomOptions(
            profile=os.environ.get("HIVEMIND_PROFILE") or None,
            yes=env_flag("HIVEMIND_TRUST_ALL"),
            skip_attestations=env_flag("HIVEMIND_NO_TRUST_CHECK"),
            allow_dev=env_flag("HIVEMIND_ALLOW_DEV_ATTESTATION"),
            runtime=get_runtime(ctx),
        )
        ctx.meta[_META_KEY] = found
    return found


def _set_json(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        get_runtime(ctx).json_output = True


def json_option(func: F) -> F:
    """Give a command its own ``--json`` flag (also accepted before the command)."""
    return click.option(
        "--json",
        "json_output",
        is_flag=True,
        expose_value=False,
        callback=_set_json,
        help="Print machine-readable JSON.",
    )(func)


def parse_duration(text: str) -> int:
    """Parse a positive duration: plain seconds or a number with ``s``/``m``/``h``/``d``.

    Raises:
        UsageProblem: anything else (``"3600"``, ``"90m"``, ``"12h"``, ``"7d"`` are valid).
    """
    match = _DURATION.fullmatch(text.strip())
    if match is None or int(match.group(1)) <= 0:
        raise UsageProblem(
            f"invalid duration {text!r}", hint="use seconds or a unit: 3600, 90m, 12h, 7d"
        )
    return int(match.group(1)) * _DURATION_UNITS[match.group(2)]


def kv_table(rows: list[tuple[str, str]], title: str | None = None) -> Table:
    """A two-column table of labelled values."""
    table = Table(show_header=False, title=title, box=None, pad_edge=False)
    table.add_column()
    table.add_column(overflow="fold")
    for label, value in rows:
        table.add_row(Text(label, style="bold"), Text(value))
    return table


def runtime(ctx: click.Context) -> Runtime:
    """Shortcut for :func:`hmctl._runtime.get_runtime`."""
    return get_runtime(ctx)
