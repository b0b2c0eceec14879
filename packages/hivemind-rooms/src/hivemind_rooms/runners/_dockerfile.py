"""A small reader for agent Dockerfiles: base, command, workdir, env, copy targets.

Only what the runners need is understood. The docker runner lets the daemon
interpret the file and only checks the base; bwrap and local runners cannot
execute build steps, so they accept the subset that maps onto "the agent
directory mounted at ``/agent``": ``FROM`` the agent base, ``COPY``/``ADD`` into
``/agent``, ``WORKDIR``, ``ENV`` (without substitutions), ``LABEL``, ``ARG``,
``USER`` (ignored: sandboxes choose the user), ``CMD`` and ``ENTRYPOINT``.
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
import shlex
from typing import Final, final

from ._types import RunnerError

__all__ = ["AGENT_MOUNT", "Dockerfile", "parse_dockerfile"]

AGENT_MOUNT: Final = "/agent"
MAX_DOCKERFILE_BYTES: Final = 64 * 1024
_SIMPLE_SUBSET: Final = frozenset(
    {"FROM", "COPY", "ADD", "WORKDIR", "ENV", "LABEL", "ARG", "USER", "CMD", "ENTRYPOINT"}
)


@final
@dataclasses.dataclass(frozen=True)
class Dockerfile:
    """What the runners read from an agent Dockerfile."""

    bases: tuple[str, ...]
    command: tuple[str, ...]
    workdir: str
    env: tuple[tuple[str, str], ...]
    copy_targets: tuple[str, ...]
    instructions: tuple[str, ...]

    def check_simple_subset(self) -> None:
        """Refuse anything a runner without an image builder cannot reproduce.

        Raises:
            RunnerError: a build step, a copy outside ``/agent`` or an ENV substitution.
        """
        extra = sorted(set(self.instructions) - _SIMPLE_SUBSET)
        if extra:
            raise RunnerError(f"this runner cannot execute Dockerfile steps: {', '.join(extra)}")
        for target in self.copy_targets:
            if target != AGENT_MOUNT and not target.startswith(AGENT_MOUNT + "/"):
                raise RunnerError(f"this runner only supports COPY into {AGENT_MOUNT}: {target}")
        if self.workdir != "/" and not _under_agent(self.workdir):
            raise RunnerError(f"this runner only supports a WORKDIR under {AGENT_MOUNT}")
        for key, value in self.env:
            if "$" in key or "$" in value:
                raise RunnerError("this runner does not expand variables in ENV")


def _under_agent(path: str) -> bool:
    return path == AGENT_MOUNT or path.startswith(AGENT_MOUNT + "/")


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    if pending.strip():
        lines.append(pending.strip())
    return lines


def _exec_or_shell(argument: str) -> tuple[str, ...]:
    if argument.startswith("["):
        try:
            value = json.loads(argument)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
    return ("/bin/sh", "-c", argument)


def _env_pairs(argument: str) -> list[tuple[str, str]]:
    try:
        words = shlex.split(argument)
    except ValueError:
        raise RunnerError("malformed ENV instruction") from None
    if words and "=" not in words[0]:
        return [(words[0], argument.split(None, 1)[1] if len(words) > 1 else "")]
    pairs = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise RunnerError("malformed ENV instruction")
        pairs.append((key, value))
    return pairs


def _copy_target(argument: str, workdir: str) -> str:
    if argument.startswith("["):
        try:
            words = json.loads(argument)
        except ValueError:
            raise RunnerError("malformed COPY instruction") from None
    else:
        words = [w for w in argument.split() if not w.startswith("--")]
    if not isinstance(words, list) or len(words) < 2:
        raise RunnerError("malformed COPY instruction")
    return posixpath.normpath(posixpath.join(workdir, str(words[-1])))


def _command(entrypoint: tuple[str, ...] | None, cmd: tuple[str, ...] | None) -> tuple[str, ...]:
    if entrypoint is None:
        return cmd or ()
    if entrypoint[:2] == ("/bin/sh", "-c"):
        return entrypoint
    return entrypoint + (cmd or ())


def parse_dockerfile(text: str) -> Dockerfile:
    """Read an agent Dockerfile.

    Raises:
        RunnerError: the file is too large, has no ``FROM`` or no command.
    """
    if len(text.encode("utf-8", "replace")) > MAX_DOCKERFILE_BYTES:
        raise RunnerError("the Dockerfile is too large")
    bases: list[str] = []
    instructions: list[str] = []
    env: list[tuple[str, str]] = []
    targets: list[str] = []
    workdir = "/"
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    for line in _logical_lines(text):
        keyword, _, argument = line.partition(" ")
        keyword = keyword.upper()
        argument = argument.strip()
        instructions.append(keyword)
        if keyword == "FROM":
            bases.append(argument.split()[0] if argument else "")
        elif keyword == "WORKDIR":
            workdir = posixpath.normpath(posixpath.join(workdir, argument))
        elif keyword == "ENV":
            env.extend(_env_pairs(argument))
        elif keyword in ("COPY", "ADD"):
            targets.append(_copy_target(argument, workdir))
        elif keyword == "CMD":
            cmd = _exec_or_shell(argument)
        elif keyword == "ENTRYPOINT":
            entrypoint = _exec_or_shell(argument)
    if not bases:
        raise RunnerError("the Dockerfile has no FROM instruction")
    command = _command(entrypoint, cmd)
    if not command:
        raise RunnerError("the Dockerfile names no command (CMD or ENTRYPOINT)")
    return Dockerfile(
        bases=tuple(bases),
        command=command,
        workdir=workdir,
        env=tuple(env),
        copy_targets=tuple(targets),
        instructions=tuple(instructions),
    )
