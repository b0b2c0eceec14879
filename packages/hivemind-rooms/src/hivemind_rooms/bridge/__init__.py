"""The per-run agent bridge, served on a unix socket mounted into the sandbox.

:func:`serve_bridge` starts a :class:`Bridge` on a fresh socket in a private
directory and yields the socket path; the runner mounts it into the sandbox
at ``/run/hivemind/bridge.sock``.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import trio

from ._artifacts import (
    ARTIFACT_NAME,
    ArtifactError,
    ArtifactStore,
    artifact_path,
    sweep_artifacts,
)
from ._bridge import Bridge
from ._http import HttpRequest, HttpResponse, serve_unix
from ._llm import Budget, LlmProxy, LlmRefused, Upstream, UpstreamError
from ._sql import REJECTED, SqlRefused, read_only_query, table_schema
from ._tools import TOOL_DEFINITIONS, DataTools, QueryAgentSource, ToolError
from ._upstream import HttpUpstream, ProviderEndpoint, providers_from_env

__all__ = [
    "ARTIFACT_NAME",
    "REJECTED",
    "TOOL_DEFINITIONS",
    "ArtifactError",
    "ArtifactStore",
    "Bridge",
    "Budget",
    "DataTools",
    "HttpRequest",
    "HttpResponse",
    "HttpUpstream",
    "LlmProxy",
    "LlmRefused",
    "ProviderEndpoint",
    "QueryAgentSource",
    "SqlRefused",
    "ToolError",
    "Upstream",
    "UpstreamError",
    "artifact_path",
    "providers_from_env",
    "read_only_query",
    "serve_bridge",
    "sweep_artifacts",
    "table_schema",
]


@contextlib.asynccontextmanager
async def serve_bridge(bridge: Bridge, *, base_dir: Path | None = None) -> AsyncIterator[Path]:
    """Serve ``bridge`` for the duration of the block.

    Args:
        bridge: The stage's bridge.
        base_dir: Where to create the private socket directory (system temp
            by default; unix socket paths must stay short).

    Yields:
        The socket path.
    """
    with tempfile.TemporaryDirectory(prefix="hmb-", dir=base_dir) as tmp:
        directory = Path(tmp)
        # Private: only the service user can reach the socket through this path; a
        # sandbox reaches it through the runner's bind mount of the socket itself.
        directory.chmod(0o700)  # noqa: ASYNC240  (one chmod of a fresh directory)
        async with trio.open_nursery() as nursery:
            path = await nursery.start(serve_unix, directory / "bridge.sock", bridge.handle)
            try:
                yield path
            finally:
                nursery.cancel_scope.cancel()
