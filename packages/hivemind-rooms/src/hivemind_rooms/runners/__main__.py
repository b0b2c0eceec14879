"""``python -m hivemind_rooms.runners``: build the agent base image, or list the runners."""

from __future__ import annotations

import sys

from ..settings import SettingsError
from . import available_runners, base_image


def _doctor() -> int:
    try:
        statuses = available_runners()
    except SettingsError as exc:  # e.g. an unknown HIVEMIND_ALLOW_LOCAL_RUNNER spelling
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for status in statuses:
        mark = "ok " if status.available else "-- "
        print(f"{mark}{status.kind.value:7} {status.detail}")
    return 0


def main(argv: list[str]) -> int:
    """Dispatch ``base-image [--force]`` or ``doctor``."""
    if argv[:1] == ["base-image"]:
        return base_image.main(argv[1:])
    if argv[:1] == ["doctor"]:
        return _doctor()
    print(
        "usage: python -m hivemind_rooms.runners {base-image [--force] | doctor}", file=sys.stderr
    )
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
