"""Pack an agent directory as the upload archive, with the shared SDK added.

The SDK lives once, in ``agents/sdk/hivemind_agent.py``; this build step puts
a copy at the root of every archive so ``main.py`` can import it inside the
sandbox's plain ``python3``. Usage: ``python agents/pack.py AGENT_DIR OUT.tar.gz``.
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


if __name__ == "__main__":
    Path(sys.argv[2]).write_bytes(pack_agent(Path(sys.argv[1])))
