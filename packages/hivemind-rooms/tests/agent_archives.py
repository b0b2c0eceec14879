"""Builders of agent archives (good and hostile) for the tests."""

from __future__ import annotations

import io
import tarfile


def tar_gz(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, content in members:
            if content is not None:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
            else:
                tar.addfile(info)
    return buf.getvalue()


def file(name: str, content: bytes, mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.mode = mode
    return info, content


def special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


def good_agent(extra: bytes = b"print('hello')\n") -> bytes:
    return tar_gz(
        [
            file("Dockerfile", b"FROM scratch\nCOPY agent.py /agent.py\n"),
            file("agent.py", extra, 0o755),
            file("prompts/secret.txt", b"private prompt\n"),
        ]
    )
