"""Process rlimits applied by a tiny exec wrapper (the fallback where cgroups are unusable)."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from typing import Final

from ._types import SandboxLimits

__all__ = ["rlimit_argv", "rlimits_enforced"]

# The wrapper sets the limits on itself, then replaces itself with the command,
# which inherits them; nothing of the caller's environment is consulted.
_WRAPPER: Final = (
    "import os,resource,sys\n"
    "m,n,c=(int(v) for v in sys.argv[1:4])\n"
    "resource.setrlimit(resource.RLIMIT_AS,(m,m))\n"
    "resource.setrlimit(resource.RLIMIT_NPROC,(n,n))\n"
    "resource.setrlimit(resource.RLIMIT_CPU,(c,c))\n"
    "resource.setrlimit(resource.RLIMIT_CORE,(0,0))\n"
    "os.execvp(sys.argv[4],sys.argv[4:])\n"
)


def rlimit_argv(limits: SandboxLimits, argv: Sequence[str]) -> list[str]:
    """Wrap ``argv`` so it starts with address-space, process and CPU-time rlimits."""
    memory = limits.memory_mb * 1024 * 1024
    cpu_seconds = math.ceil(limits.timeout_s * max(limits.cpus, 1.0)) + 1
    return [
        sys.executable,
        "-I",
        "-S",
        "-c",
        _WRAPPER,
        str(memory),
        str(limits.pids),
        str(cpu_seconds),
        *argv,
    ]


def rlimits_enforced() -> frozenset[str]:
    """Limit names the rlimit wrapper really enforces for this user.

    RLIMIT_NPROC counts every process of the real user and does not apply to root, so
    ``pids`` is claimed only for an unprivileged service user.
    """
    names = {"memory-address-space", "cpu-time", "timeout"}
    if os.geteuid() != 0:
        names.add("pids")
    return frozenset(names)
