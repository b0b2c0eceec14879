"""Pack an agent directory into an upload archive, with the shared SDK.

The SDK is written once, in ``agents/sdk/hivemind_agent.py``; no agent
directory keeps a copy. Packing puts the current SDK at the archive root, next
to the agent's ``main.py`` (``hmctl agents upload`` does the same for a
directory whose sibling ``sdk/`` holds it).

Usage: ``python agents/pack.py AGENT_DIR OUT.tar.gz``.
"""

from __future__ import annotations

import io
import sys
import tarfile
from pathlib import Path

SDK = Path(__file__).with_name("sdk") / "hivemind_agent.py"
_SKIP = {"__pycache__", ".git", ".venv", "node_modules"}


def agent_files(agent_dir: Path) -> dict[str, bytes]:
    """The files of an agent archive: the directory's files plus the SDK."""
    files = {SDK.name: SDK.read_bytes()}
    for path in sorted(agent_dir.rglob("*")):
        rel = path.relative_to(agent_dir)
        if path.is_file() and not _SKIP & set(rel.parts):
            files[rel.as_posix()] = path.read_bytes()
    return files


def pack_agent(agent_dir: Path) -> bytes:
    """Return a gzip tar of the agent (deterministic member order and times)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, content in agent_files(agent_dir).items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(content), 0o644, 0
            tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def agent_dirs() -> list[Path]:
    """Every agent directory here (one with a ``main.py``)."""
    return sorted(p for p in Path(__file__).parent.iterdir() if (p / "main.py").is_file())


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python agents/pack.py AGENT_DIR OUT.tar.gz")
    Path(sys.argv[2]).write_bytes(pack_agent(Path(sys.argv[1])))
