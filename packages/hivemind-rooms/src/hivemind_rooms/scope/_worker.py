"""Runs one scope-function call in a fresh interpreter (started with ``-I -S``).

Theory of operation. This file is executed as a script, never imported by
the service. Before it reads the untrusted source it locks itself down:
resource limits (CPU seconds, address space, no new files, no children, no
core dumps), a private network namespace when the kernel allows one, and an
audit hook that refuses sockets, process creation, file opens, imports and
``ctypes`` once the function is defined. The request (source, SQL, params,
rows, and the builtin names the function may use, which the parent takes
from :data:`hivemind_rooms.scope._compile.SAFE_BUILTINS`) arrives as JSON on
stdin; the decision leaves as one JSON line on stdout. Any failure is
reported as a deny; the parent also treats a crash, a timeout or unreadable
output as a deny.
"""

import contextlib
import json
import resource
import sys

_DENIED_PREFIXES = (
    "socket.",
    "subprocess.",
    "os.system",
    "os.exec",
    "os.fork",
    "os.spawn",
    "os.posix_spawn",
    "os.kill",
    "ctypes.",
    "open",
    "import",
    "compile",
    "exec",
    "shutil.",
    "sys._getframe",
    "code.",
    "object.__getattr__",
)
_STRICT = [False]


def _limit(kind: int, value: int) -> None:
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(kind, (value, value))


def _private_network() -> None:
    """Enter an empty network namespace if the kernel lets us (best effort)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        clone_newnet, clone_newuser = 0x40000000, 0x10000000
        if libc.unshare(clone_newnet) != 0:
            libc.unshare(clone_newuser | clone_newnet)
    except Exception:
        pass


def _audit(event: str, _args: object) -> None:
    if _STRICT[0] and event.startswith(_DENIED_PREFIXES):
        raise RuntimeError("operation not permitted in a scope function")


def _lock_down(cpu_seconds: int, memory_bytes: int) -> None:
    _private_network()
    _limit(resource.RLIMIT_CPU, cpu_seconds)
    _limit(resource.RLIMIT_AS, memory_bytes)
    _limit(resource.RLIMIT_FSIZE, 0)
    _limit(resource.RLIMIT_CORE, 0)
    _limit(resource.RLIMIT_NOFILE, 8)
    _limit(resource.RLIMIT_NPROC, 0)
    sys.addaudithook(_audit)


def _decide(result: object) -> dict:
    if not isinstance(result, dict) or "allow" not in result:
        return {"allow": False, "error": "scope function returned no decision"}
    if result["allow"] is not True:
        error = result.get("error")
        return {"allow": False, "error": error if isinstance(error, str) else ""}
    rows = result.get("rows")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        return {"allow": False, "error": "scope function allowed without a list of rows"}
    return {"allow": True, "rows": rows}


def main() -> None:
    cpu, memory = int(sys.argv[1]), int(sys.argv[2])
    _lock_down(cpu, memory)
    request = json.loads(sys.stdin.buffer.read())
    import builtins

    names = request["builtins"]
    safe = {name: getattr(builtins, name) for name in names if hasattr(builtins, name)}
    for name in ("True", "False", "None"):
        safe.pop(name, None)
    namespace = {"__builtins__": safe}
    code = compile(request["source"], "<scope_fn>", "exec")
    exec(code, namespace)
    _STRICT[0] = True
    try:
        result = namespace["scope"](request["sql"], request["params"], request["rows"])
        decision = _decide(result)
        line = json.dumps(decision, allow_nan=False, default=str)
    except BaseException:
        line = json.dumps({"allow": False, "error": ""})
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
