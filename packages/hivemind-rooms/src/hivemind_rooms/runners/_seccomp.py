"""A small seccomp filter for bwrap sandboxes (x86_64), assembled as classic BPF.

Theory of operation. Docker applies its default seccomp profile; bubblewrap
applies whatever BPF program it is handed (``--seccomp FD``). This module
assembles a deny-list program in the spirit of docker's profile, aimed at
kernel attack surface an agent never needs: it checks the architecture (any
other ABI is killed), refuses the x32 ABI, refuses new namespaces (``unshare``,
``setns``, and ``clone`` with any ``CLONE_NEW*`` flag), answers ``clone3``
with ENOSYS (the C library then falls back to ``clone``, whose flags can be
inspected), and refuses mounting, tracing, kernel keyrings, eBPF,
perf events, userfaultfd, io_uring, module and kexec loading, clock and swap
changes and handle-based opens with EPERM. Everything else is allowed.

seccomp_data layout: ``nr`` at offset 0, ``arch`` at 4, ``args[0]`` low word at 16.
"""

from __future__ import annotations

import errno
import os
import platform
import struct
from typing import Final

__all__ = ["seccomp_program", "seccomp_supported", "write_seccomp_fd"]

_LD_ABS_W: Final = 0x20
_JEQ_K: Final = 0x15
_JGE_K: Final = 0x35
_JSET_K: Final = 0x45
_RET_K: Final = 0x06
_RET_KILL_PROCESS: Final = 0x80000000
_RET_ERRNO: Final = 0x00050000
_RET_ALLOW: Final = 0x7FFF0000
_AUDIT_ARCH_X86_64: Final = 0xC000003E
_X32_BIT: Final = 0x40000000
_NR_CLONE: Final = 56
_NR_CLONE3: Final = 435
_CLONE_NEW_FLAGS: Final = (
    0x00020000  # CLONE_NEWNS
    | 0x02000000  # CLONE_NEWCGROUP
    | 0x04000000  # CLONE_NEWUTS
    | 0x08000000  # CLONE_NEWIPC
    | 0x10000000  # CLONE_NEWUSER
    | 0x20000000  # CLONE_NEWPID
    | 0x40000000  # CLONE_NEWNET
    | 0x00000080  # CLONE_NEWTIME
)
# x86_64 numbers of the refused system calls.
DENIED_X86_64: Final = {
    "ptrace": 101,
    "mount": 165,
    "umount2": 166,
    "pivot_root": 155,
    "unshare": 272,
    "setns": 308,
    "keyctl": 250,
    "add_key": 248,
    "request_key": 249,
    "bpf": 321,
    "perf_event_open": 298,
    "userfaultfd": 323,
    "kexec_load": 246,
    "kexec_file_load": 320,
    "init_module": 175,
    "finit_module": 313,
    "delete_module": 176,
    "reboot": 169,
    "swapon": 167,
    "swapoff": 168,
    "acct": 163,
    "settimeofday": 164,
    "clock_settime": 227,
    "adjtimex": 159,
    "clock_adjtime": 305,
    "open_by_handle_at": 304,
    "name_to_handle_at": 303,
    "process_vm_readv": 310,
    "process_vm_writev": 311,
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "move_mount": 429,
    "open_tree": 428,
    "fspick": 433,
    "mount_setattr": 442,
    "quotactl": 179,
    "lookup_dcookie": 212,
    "syslog": 103,
    "vhangup": 153,
    "iopl": 172,
    "ioperm": 173,
    "uselib": 134,
    "sysfs": 139,
    "_sysctl": 156,
}


def seccomp_supported() -> bool:
    """True on the architectures this filter knows (x86_64)."""
    return platform.machine() in ("x86_64", "AMD64")


class _Assembler:
    """Classic BPF with symbolic jump targets (resolved to 8-bit relative offsets)."""

    def __init__(self) -> None:
        self._code: list[tuple[int, str | int, str | int, int]] = []
        self._labels: dict[str, int] = {}

    def label(self, name: str) -> None:
        self._labels[name] = len(self._code)

    def op(self, code: int, k: int, jt: str | int = 0, jf: str | int = 0) -> None:
        self._code.append((code, jt, jf, k))

    def _offset(self, at: int, target: str | int) -> int:
        if isinstance(target, int):
            return target
        offset = self._labels[target] - at - 1
        if not 0 <= offset <= 255:
            raise ValueError("seccomp jump out of range")
        return offset

    def assemble(self) -> bytes:
        out = bytearray()
        for at, (code, jt, jf, k) in enumerate(self._code):
            out += struct.pack(
                "=HBBI", code, self._offset(at, jt), self._offset(at, jf), k & 0xFFFFFFFF
            )
        return bytes(out)


def seccomp_program() -> bytes:
    """The compiled filter (``struct sock_filter`` array) for x86_64."""
    asm = _Assembler()
    asm.op(_LD_ABS_W, 4)
    asm.op(_JEQ_K, _AUDIT_ARCH_X86_64, jt="nr", jf=0)
    asm.op(_RET_K, _RET_KILL_PROCESS)
    asm.label("nr")
    asm.op(_LD_ABS_W, 0)
    asm.op(_JGE_K, _X32_BIT, jt="eperm", jf=0)
    asm.op(_JEQ_K, _NR_CLONE3, jt="enosys", jf=0)
    asm.op(_JEQ_K, _NR_CLONE, jt="clone", jf=0)
    for number in sorted(DENIED_X86_64.values()):
        asm.op(_JEQ_K, number, jt="eperm", jf=0)
    asm.op(_RET_K, _RET_ALLOW)
    asm.label("clone")
    asm.op(_LD_ABS_W, 16)
    asm.op(_JSET_K, _CLONE_NEW_FLAGS, jt="eperm", jf=0)
    asm.op(_RET_K, _RET_ALLOW)
    asm.label("enosys")
    asm.op(_RET_K, _RET_ERRNO | errno.ENOSYS)
    asm.label("eperm")
    asm.op(_RET_K, _RET_ERRNO | errno.EPERM)
    return asm.assemble()


def write_seccomp_fd() -> int:
    """A readable file descriptor holding the program (for ``--seccomp`` with ``pass_fds``).

    The caller closes it after the sandbox has started.
    """
    fd = os.memfd_create("hivemind-seccomp")
    try:
        os.write(fd, seccomp_program())
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd
