#!/usr/bin/env bash
# Run uv, installing it first (with pip, into .cache/bootstrap) when the machine has none.
# Python interpreters are never downloaded: the machine's own python3 is used.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
export UV_PYTHON_DOWNLOADS=never
if command -v uv >/dev/null 2>&1; then
  exec uv "$@"
fi
boot="$here/.cache/bootstrap"
if [ ! -x "$boot/bin/uv" ]; then
  echo "uv not found: installing it with pip into $boot" >&2
  python3 -m venv "$boot" 2>/dev/null || { rm -rf "$boot"; python3 -m venv --without-pip "$boot"; }
  if [ -x "$boot/bin/pip" ]; then
    "$boot/bin/pip" install --quiet uv
  else
    python3 -m pip install --quiet --target "$boot/lib-uv" uv
    mkdir -p "$boot/bin"; ln -sf "$boot/lib-uv/bin/uv" "$boot/bin/uv"
  fi
fi
exec "$boot/bin/uv" "$@"
