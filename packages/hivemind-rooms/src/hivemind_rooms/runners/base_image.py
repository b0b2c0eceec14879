"""The agent base image ``hivemind/agent-base:bookworm``, built locally without any pull.

Theory of operation. Agent images build ``FROM`` this base with ``pull=False``,
so no mutable image is ever fetched from a registry at run time. The base is a
Debian bookworm ``minbase`` root filesystem with ``python3``, produced by
``debootstrap`` from the Debian mirror this machine's apt is already configured
with (read from the apt sources at build time, never stored in the
repository), shrunk (no apt caches, docs, man pages, locales; setuid and setgid
bits cleared) and imported with the Docker SDK. Building takes minutes, so it
is idempotent: an existing image with that tag is kept.

Run ``python -m hivemind_rooms.runners base-image`` (or
``tools/agent-base-image.sh``) as root to build it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

__all__ = [
    "BASE_IMAGE",
    "BaseImageError",
    "apt_mirror",
    "base_image_buildable",
    "base_image_present",
    "build_base_image",
    "ensure_base_image",
    "main",
]

BASE_REPOSITORY: Final = "hivemind/agent-base"
BASE_TAG: Final = "bookworm"
BASE_IMAGE: Final = f"{BASE_REPOSITORY}:{BASE_TAG}"
SUITE: Final = "bookworm"
DEBOOTSTRAP_TIMEOUT_S: Final = 1800
_IMAGE_CHANGES: Final = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    "ENV PYTHONDONTWRITEBYTECODE=1",
    'CMD ["python3"]',
    f"LABEL org.hivemind.base={SUITE}-minbase-python3",
)
_PRUNE: Final = (
    "var/cache/apt",
    "var/lib/apt/lists",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "usr/share/linda",
    "var/cache/debconf/templates.dat-old",
    "var/log",
)

Log = Callable[[str], None]
_BUILD_LOCK: Final = threading.Lock()


class BaseImageError(Exception):
    """The base image cannot be built (no mirror, debootstrap failed, no daemon)."""


def _deb822_uris(text: str) -> list[str]:
    """URIs of deb822 stanzas whose suites include the bookworm suite itself."""
    found = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if SUITE not in fields.get("suites", "").split():
            continue
        found.extend(fields.get("uris", "").split())
    return found


def _one_line_uris(text: str) -> list[str]:
    found = []
    for line in text.splitlines():
        words = re.sub(r"\[[^\]]*\]", " ", line.split("#", 1)[0]).split()
        if len(words) >= 3 and words[0] == "deb" and words[2] == SUITE:
            found.append(words[1])
    return found


def apt_mirror(apt_dir: Path = Path("/etc/apt")) -> str:
    """The Debian mirror apt on this machine uses for the bookworm suite.

    Args:
        apt_dir: The apt configuration directory.

    Returns:
        The mirror URI from ``sources.list.d/*.sources`` (``URIs:``) or ``sources.list``.

    Raises:
        BaseImageError: no bookworm ``deb`` source is configured.
    """
    candidates: list[str] = []
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        candidates += _deb822_uris(path.read_text(errors="replace"))
    lists = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]
    for path in lists:
        if path.is_file():
            candidates += _one_line_uris(path.read_text(errors="replace"))
    for uri in candidates:
        if "security" not in uri:
            return uri
    raise BaseImageError(f"no apt source for the {SUITE} suite under {apt_dir}")


def base_image_present(client: Any, image: str = BASE_IMAGE) -> bool:
    """True when the daemon behind ``client`` (a ``docker.DockerClient``) has ``image``."""
    import docker.errors

    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        return False
    return True


def base_image_buildable() -> tuple[bool, str]:
    """Whether this machine can build the base image: root, debootstrap and an apt mirror."""
    if os.geteuid() != 0:
        return False, "building it needs root"
    if shutil.which("debootstrap") is None:
        return False, "building it needs debootstrap"
    try:
        apt_mirror()
    except (BaseImageError, OSError) as exc:
        return False, f"building it needs an apt mirror ({exc})"
    return True, "it will be built on first use (a few minutes)"


def _shrink(root: Path) -> None:
    for relative in _PRUNE:
        target = root / relative
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
            target.mkdir(mode=0o755)
    for path in root.rglob("*"):
        if path.is_symlink() or not path.is_file():
            continue
        mode = path.stat().st_mode
        if mode & 0o6000:
            path.chmod(mode & ~0o6000 & 0o7777)


def _debootstrap(root: Path, mirror: str, log: Log) -> None:
    argv = [
        "debootstrap",
        "--variant=minbase",
        "--include=python3",
        SUITE,
        str(root),
        mirror,
    ]
    log(f"running debootstrap ({SUITE}, minbase + python3); this takes a few minutes")
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=DEBOOTSTRAP_TIMEOUT_S, check=False
        )
    except FileNotFoundError:
        raise BaseImageError("debootstrap is not installed") from None
    except subprocess.TimeoutExpired:
        raise BaseImageError("debootstrap timed out") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout)[-2000:]
        raise BaseImageError(f"debootstrap failed ({done.returncode}): {tail}")


def _import(client: Any, root: Path, workdir: Path, log: Log) -> str:
    archive = workdir / "rootfs.tar"
    log("packing the root filesystem")
    with tarfile.open(archive, "w") as tar:
        for entry in sorted(root.iterdir()):
            tar.add(entry, arcname=entry.name)
    log(f"importing {BASE_IMAGE}")
    client.api.import_image_from_file(
        str(archive), repository=BASE_REPOSITORY, tag=BASE_TAG, changes=list(_IMAGE_CHANGES)
    )
    return str(client.images.get(BASE_IMAGE).id)


def build_base_image(client: Any, *, mirror: str | None = None, log: Log = print) -> str:
    """Build and import the base image unconditionally.

    Args:
        client: A ``docker.DockerClient``.
        mirror: Debian mirror; defaults to :func:`apt_mirror`.
        log: Receives progress lines.

    Returns:
        The image id.

    Raises:
        BaseImageError: debootstrap or the import failed.
    """
    mirror = mirror or apt_mirror()
    with tempfile.TemporaryDirectory(prefix="hivemind-agent-base-") as tmp:
        workdir = Path(tmp)
        root = workdir / "rootfs"
        _debootstrap(root, mirror, log)
        _shrink(root)
        try:
            return _import(client, root, workdir, log)
        except Exception as exc:
            raise BaseImageError(f"docker import failed: {type(exc).__name__}: {exc}") from exc


def ensure_base_image(client: Any, *, log: Log = print) -> str:
    """Return the base image id, building it first when the daemon lacks it.

    Concurrent callers in one process wait for a single build.
    """
    with _BUILD_LOCK:
        if base_image_present(client):
            return str(client.images.get(BASE_IMAGE).id)
        log(f"{BASE_IMAGE} is missing: building it from the local Debian mirror")
        return build_base_image(client, log=log)


def main(argv: Iterable[str] | None = None) -> int:
    """Command line: build the base image if missing (``--force`` rebuilds)."""
    import docker

    parser = argparse.ArgumentParser(
        prog="base-image", description=f"Build {BASE_IMAGE} with debootstrap"
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if present")
    args = parser.parse_args(list(argv) if argv is not None else None)
    client = docker.from_env(timeout=600)
    try:
        image_id = build_base_image(client) if args.force else ensure_base_image(client)
    except BaseImageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    print(f"{BASE_IMAGE} {image_id}")
    return 0
