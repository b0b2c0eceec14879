#!/usr/bin/env bash
# Build the agent base image hivemind/agent-base:bookworm, once (an existing image is kept;
# --force rebuilds). Needs root, docker and debootstrap; the Debian mirror is read from this
# machine's apt sources at build time.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -x "$here/.venv/bin/python" ]; then
  make -C "$here" install
fi
exec "$here/.venv/bin/python" -m hivemind_rooms.runners base-image "$@"
