"""``python -m hmctl``."""

from __future__ import annotations

from . import cli

if __name__ == "__main__":
    cli()
