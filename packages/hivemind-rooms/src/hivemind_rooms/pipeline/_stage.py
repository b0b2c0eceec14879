"""Run one stage: unpack the agent, serve its bridge, run it in the sandbox.

Theory of operation. The stored files of an agent are written to a private
temporary directory (sealed files are opened with the tenant or room key,
which must already be open in this process); the runner verifies them
against the registered digest and prepares them. The bridge for the stage
is served on a fresh unix socket for exactly the lifetime of the sandbox.
Error texts are chosen so that nothing the agent saw can leak through them:
only a query stage without a mediator may quote its own stderr, because its
output would be released anyway; the scope stage (full data) and any stage
before a mediator report only the exit status.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, final

import trio

from ..bridge import ArtifactStore, Bridge, Budget, DataTools, LlmProxy, Upstream, serve_bridge
from ..vault import KeyScope, VaultKeyring, open_blob
from ._plan import AgentRef

__all__ = ["StageError", "StageResult", "StageRunner", "run_stage", "write_agent_dir"]


class StageError(Exception):
    """A stage failed; the message is safe to store as the run's error."""


class StageRunner(Protocol):
    """The part of a sandbox runner the pipeline uses."""

    async def prepare(self, agent_dir: Path, digest: str) -> Any:
        """Verify and prepare an agent directory."""
        ...

    async def run(self, image: Any, *, bridge_socket: Path, limits: Any, stage: str) -> Any:
        """Run a prepared agent once against the bridge socket."""
        ...


@final
@dataclasses.dataclass(frozen=True)
class StageResult:
    """What a stage produced, with its metering."""

    output: str = dataclasses.field(repr=False)
    budget: Budget
    tape: list[dict[str, Any]] = dataclasses.field(repr=False)
    seconds: float
    tool_calls: Mapping[str, int]
    runner: str


def write_agent_dir(
    store: Any, tenant_id: str, agent_id: str, keyring: VaultKeyring, dest: Path
) -> None:
    """Write an agent's stored files under ``dest`` (sealed files opened in memory).

    Raises:
        StageError: a sealed file whose key is not open, or a bad stored path.
    """
    for meta in store.agent_files(agent_id):
        row = store.agent_file(agent_id, meta["file_path"])
        path = str(row["file_path"])
        if path.startswith("/") or ".." in path.split("/"):
            raise StageError(f"agent '{agent_id}' has an invalid stored path")
        content = _content(row, tenant_id, agent_id, keyring)
        target = dest / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        target.chmod(int(row["mode"]) & 0o755 | 0o444)


def _content(row: Mapping[str, Any], tenant_id: str, agent_id: str, keyring: VaultKeyring) -> bytes:
    if not row["seal_mode"]:
        return bytes(row["content"])
    if row["seal_mode"] == "room":
        scope = KeyScope.room(tenant_id, str(row["room_id"]))
    else:
        scope = KeyScope.tenant(tenant_id)
    if not keyring.is_open(scope):
        raise StageError(f"agent '{agent_id}' is sealed and its key is not open")
    key = keyring.get(scope)
    return open_blob(
        key, scope, "agent-file", (agent_id, str(row["file_path"])), bytes(row["ciphertext"])
    )


def _failure(agent: AgentRef, role: str, outcome: Any, timeout: float, quote: bool) -> StageError:
    name = f"Agent '{agent.agent_id}' ({role})"
    if outcome.timed_out:
        return StageError(f"{name} timed out after {int(timeout)}s")
    if outcome.oom_killed:
        return StageError(f"{name} was killed for exceeding its memory limit")
    detail = ""
    if quote:
        detail = ": " + (outcome.stderr_tail or outcome.stdout_tail).strip()[-400:]
    return StageError(f"{name} failed (exit_code={outcome.exit_code}){detail}")


@final
@dataclasses.dataclass(frozen=True)
class StageSpec:
    """How to run one stage."""

    role: str
    agent: AgentRef
    inputs: Mapping[str, Any]
    tools: DataTools | None
    artifacts: ArtifactStore | None
    provider: str
    model: str
    budget: Budget
    limits: Any
    quote_errors: bool


async def run_stage(
    spec: StageSpec,
    *,
    runner: StageRunner,
    upstream: Upstream | None,
    agent_dir_writer: Any,
) -> StageResult:
    """Run one stage to completion.

    Raises:
        StageError: preparation failed, the agent failed or produced no output.
    """
    llm = LlmProxy(upstream, provider=spec.provider, model=spec.model, budget=spec.budget)
    bridge = Bridge(spec.role, spec.inputs, llm, spec.tools, spec.artifacts)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hm-agent-") as tmp:
        agent_dir = Path(tmp) / "agent"
        agent_dir.mkdir()
        await trio.to_thread.run_sync(agent_dir_writer, spec.agent.agent_id, agent_dir)
        try:
            image = await runner.prepare(agent_dir, spec.agent.digest)
        except Exception as exc:
            raise StageError(
                f"Agent '{spec.agent.agent_id}' could not be prepared: {str(exc)[:300]}"
            ) from None
        async with serve_bridge(bridge) as socket_path:
            # The budgets were charged live; a failing stage still reports what it used.
            outcome = await runner.run(
                image, bridge_socket=socket_path, limits=spec.limits, stage=spec.role
            )
    if llm.exhausted:
        raise StageError(f"{spec.role} stage stopped: {llm.exhausted}")
    if not outcome.ok:
        raise _failure(spec.agent, spec.role, outcome, spec.limits.timeout_s, spec.quote_errors)
    output = bridge.output if bridge.output is not None else outcome.stdout_tail
    return StageResult(
        output=output.strip(),
        budget=spec.budget,
        tape=llm.tape,
        seconds=round(time.monotonic() - started, 3),
        tool_calls=dict(spec.tools.calls) if spec.tools else {},
        runner=str(getattr(outcome.runner, "value", outcome.runner)),
    )
