"""The run engine: a bounded worker pool executing scope -> query -> mediator.

Theory of operation. Submission (in the HTTP layer) fixes a :class:`RunPlan`,
places the billing hold and inserts the ``pending`` row, then hands the plan
to :meth:`RunEngine.submit`, a bounded queue. :meth:`RunEngine.serve` runs in
the app's lifespan nursery and starts each plan under a capacity limiter, so
at most ``workers`` runs use sandboxes at once. A run is:

1. SCOPE with FULL_READ tools; its output must hold a ``scope_fn`` that
   passes the static rules, or the run fails before any query agent starts.
2. QUERY with tools SCOPED by that function (each call in its own locked
   subprocess); artifacts only without a mediator and when the room allows,
   sealed at rest under the room key (see :mod:`._artifacts`).
3. MEDIATOR (when pinned) with no tools; its output is the only answer that
   is released. A pinned mediator that does not run fails the run.

Every run ends, success or failure, with usage recorded, a signed run
attestation (when the signer is ready) and settlement of the hold. The
error text stored for a failure never quotes data the participant could not
see (see :mod:`._stage`). Output and error are stored sealed under the room
key (:mod:`._fields`); the attestation is signed over their plaintext first.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, final

import trio

from ..agents_registry import agent_file_content
from ..attestation import AgentPin, build_run_body, sign_run_attestation, tape_hash
from ..billing import SettleResult
from ..bridge import Budget, DataTools, QueryAgentSource, Upstream
from ..scope import ScopeCompileError, ScopeLimits, extract_scope_fn
from ..vault import KeyScope, VaultLocked
from ._artifacts import SealedArtifactSink, sweep_sealed_artifacts
from ._config import EngineConfig
from ._fields import ROOM_CLOSED, seal_clear_runs, seal_run_text
from ._mode import scope_mode
from ._plan import RunPlan
from ._record import finish_run, mark_running, scrub_expired_runs
from ._stage import StageError, StageResult, StageRunner, StageSpec, run_stage, write_agent_dir

__all__ = ["QueueFull", "RunEngine", "make_limits"]

_log = logging.getLogger(__name__)

_MIN_MEDIATOR_TOKENS = 128


class QueueFull(Exception):
    """Too many runs are waiting; the submission should be answered 503."""


def make_limits(memory_mb: int, timeout_s: float) -> Any:
    """Build the runner's ``SandboxLimits`` (memory, wall clock, defaults otherwise)."""
    from ..runners import SandboxLimits

    return SandboxLimits(memory_mb=memory_mb, timeout_s=timeout_s)


@final
class RunEngine:
    """Executes submitted runs.

    Args:
        services: The app's services (storage, billing, keyring, attestation).
        runner: The sandbox runner.
        upstream: The LLM provider client (None: no provider configured).
        config: Limits and defaults.
        limits_factory: Builds sandbox limits from ``(memory_mb, timeout_s)``.
    """

    def __init__(
        self,
        services: Any,
        *,
        runner: StageRunner | None,
        upstream: Upstream | None,
        config: EngineConfig,
        limits_factory: Callable[[int, float], Any] = make_limits,
    ) -> None:
        self.services = services
        self.runner = runner
        self.upstream = upstream
        self.config = config
        self._limits = limits_factory
        self._send, self._receive = trio.open_memory_channel[RunPlan](config.queue_size)
        self.artifacts_root = Path(services.settings.data_dir) / "artifacts"
        self.active: set[str] = set()
        self._live: dict[str, _Run] = {}

    def progress(self, run_id: str) -> dict[str, Any] | None:
        """Where a running run is: its stage, when the stage began, budget used so far.

        Counts only (never prompts or data); None when the run is not executing here.
        """
        run = self._live.get(run_id)
        if run is None:
            return None
        used = [b.to_dict() for b in run.budgets.values()]
        return {
            "stage": run.stage,
            "stage_started_at": run.stage_started_at,
            "llm_calls": sum(u["calls"] for u in used),
            "total_tokens": sum(u["total_tokens"] for u in used),
            "max_tokens": run.plan.max_tokens,
        }

    def submit(self, plan: RunPlan) -> None:
        """Queue a plan for execution.

        Raises:
            QueueFull: the queue is at capacity.
        """
        try:
            self._send.send_nowait(plan)
        except trio.WouldBlock:
            raise QueueFull() from None

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run queued plans, ``workers`` at a time, until cancelled."""
        limiter = trio.CapacityLimiter(self.config.workers)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._sweep_forever)
            task_status.started()
            async for plan in self._receive:
                await limiter.acquire_on_behalf_of(plan.run_id)
                nursery.start_soon(self._guarded, limiter, plan)

    async def _sweep_forever(self) -> None:
        """Apply retention now, then every hour or half the shorter retention.

        Expired (and any unsealed) artifacts are deleted; expired finished runs
        lose their payload (:func:`scrub_expired_runs`); run text an earlier
        version stored in clear is sealed once its room is open
        (:func:`seal_clear_runs`).
        """
        config = self.config
        shortest = min(config.artifact_retention_s, config.run_retention_s)
        interval = max(1.0, min(3600.0, shortest / 2))
        while True:
            await trio.to_thread.run_sync(
                sweep_sealed_artifacts, self.artifacts_root, config.artifact_retention_s
            )
            await trio.to_thread.run_sync(
                scrub_expired_runs, self.services, config.run_retention_s, self.services.clock()
            )
            await trio.to_thread.run_sync(seal_clear_runs, self.services)
            await trio.sleep(interval)

    async def _guarded(self, limiter: trio.CapacityLimiter, plan: RunPlan) -> None:
        try:
            await self.execute(plan)
        finally:
            limiter.release_on_behalf_of(plan.run_id)

    async def execute(self, plan: RunPlan) -> None:
        """Run a plan to its end and record the result (never raises on stage failure)."""
        store = self.services.storage.tenant(plan.tenant_id)
        self.active.add(plan.run_id)
        try:
            mark_running(store, plan.run_id, self.services.clock())
            run = _Run(self, plan)
            self._live[plan.run_id] = run
            await run.go()
            await trio.to_thread.run_sync(self._finish, plan, run)
        finally:
            self.active.discard(plan.run_id)
            self._live.pop(plan.run_id, None)

    def _finish(self, plan: RunPlan, run: _Run) -> None:
        store = self.services.storage.tenant(plan.tenant_id)
        usage = run.usage()
        try:
            settled = self.services.billing.settle(
                plan.payer_tenant_id,
                run_id=plan.run_id,
                hold_micro_usd=plan.hold_micro_usd,
                stages=usage["stages"],
                metadata={"payer_token_id": plan.payer_token_id},
            )
        except Exception:  # the ledger write failed: the hold stays for reconciliation
            _log.exception("settlement of run %s failed", plan.run_id)
            settled = SettleResult("billing_error", 0)
        status = "completed" if run.error is None else "failed"
        output = run.output[: self.config.max_output_chars] if run.error is None else ""
        error = (run.error or "")[:500]
        scope = KeyScope.room(plan.tenant_id, plan.room_id)
        try:
            key = self.services.keyring.get(scope)
        except VaultLocked:  # revoked meanwhile: nothing of the room may be stored in clear
            key = None
            status, output, error = "failed", "", ROOM_CLOSED
        now = self.services.clock()

        def sealed(field: str, text: str) -> str:
            return text if key is None else seal_run_text(key, scope, plan.run_id, field, text)

        finish_run(
            store,
            plan.run_id,
            {
                "status": status,
                "output": sealed("output", output) if status == "completed" else None,
                "error": sealed("error", error) if error else None,
                "usage": usage,
                "attestation": self._attest(plan, run, status, output, error, now),
                "billing_cost_micro_usd": settled.cost_micro_usd,
                "billing_status": settled.status,
                "billing_settled_at": now,
                "billing_model": plan.models.get("query", ""),
                "updated_at": now,
            },
        )

    def _attest(
        self, plan: RunPlan, run: _Run, status: str, output: str, error: str, now: float
    ) -> dict[str, Any] | None:
        service = self.services.attestation
        if service is None or not getattr(service, "ready", False):
            return None
        signer = service.run_signer
        try:
            return self._signed(plan, run, status, output, error, now, service, signer)
        except ValueError:  # a malformed stored hash: the run is kept, unsigned
            _log.exception("run %s could not be signed", plan.run_id)
            return None

    def _signed(
        self,
        plan: RunPlan,
        run: _Run,
        status: str,
        output: str,
        error: str,
        now: float,
        service: Any,
        signer: Any,
    ) -> dict[str, Any]:
        body = build_run_body(
            run_id=plan.run_id,
            status=status,
            timestamp=int(now),
            platform=service.platform,
            room_id=plan.room_id,
            manifest_hash=plan.manifest_hash,
            compose_hash=service.compose_hash,
            agents={r: AgentPin(a.agent_id, a.digest) for r, a in plan.agents.items()},
            models=dict(plan.models),
            prompt=plan.prompt,
            output=output,
            error=error,
            tape_hash=tape_hash(run.tape()),
            signer=signer,
            artifacts=run.artifacts.attested() if run.artifacts is not None else (),
        )
        return sign_run_attestation(body, signer)


class _Run:
    """The state of one executing run."""

    def __init__(self, engine: RunEngine, plan: RunPlan) -> None:
        self.engine, self.plan = engine, plan
        self.remaining = plan.max_tokens
        self.results: dict[str, StageResult] = {}
        self.budgets: dict[str, Budget] = {}
        self.output = ""
        self.error: str | None = None
        self.scope_mode, self.scope_mode_reason = scope_mode(plan, engine.config.scope_mode)
        self.stage = "starting"
        self.stage_started_at: float | None = None
        self.artifacts: SealedArtifactSink | None = None

    def tape(self) -> list[dict[str, Any]]:
        return [{"stage": r, **e} for r, res in self.results.items() for e in res.tape]

    def usage(self) -> dict[str, Any]:
        stages: dict[str, Any] = {}
        for role, budget in self.budgets.items():
            result = self.results.get(role)
            stages[role] = {
                **budget.to_dict(),
                "provider": self.plan.provider,
                "model": self.plan.models.get(role, ""),
                "seconds": result.seconds if result else None,
                "tool_call_counts": dict(result.tool_calls) if result else {},
                "runner": result.runner if result else "",
            }
        total = {
            k: sum(s[k] for s in stages.values())
            for k in ("prompt_tokens", "completion_tokens", "total_tokens")
        }
        calls = sum(s["calls"] for s in stages.values())
        return {
            "calls": calls,
            **total,
            "max_tokens": self.plan.max_tokens,
            "stages": stages,
            "scope_mode": self.scope_mode,
            "scope_mode_reason": self.scope_mode_reason,
        }

    async def go(self) -> None:
        try:
            if self.engine.runner is None:
                raise StageError("no sandbox runner is available on this service")
            source = await self._scope()
            raw = await self._query(source)
            self.output = await self._mediate(raw) if self.plan.mediated else raw
        except StageError as exc:
            self.error = str(exc)
        except Exception as exc:
            self.error = f"internal error in the run pipeline ({type(exc).__name__})"

    def _budget(self, role: str, tokens: int) -> Budget:
        agent = self.plan.agents[role]
        calls = min(self.plan.max_calls or agent.max_llm_calls, self.engine.config.max_llm_calls)
        budget = Budget(max_tokens=max(tokens, 0), max_calls=calls)
        self.budgets[role] = budget
        return budget

    def _spec(
        self,
        role: str,
        inputs: dict[str, Any],
        tools: DataTools | None,
        tokens: int,
        artifacts: SealedArtifactSink | None = None,
    ) -> StageSpec:
        agent = self.plan.agents[role]
        config = self.engine.config
        timeout = min(self.plan.timeout_s or agent.timeout_s, config.agent_timeout_s)
        memory = min(agent.memory_mb, config.memory_cap_mb)
        return StageSpec(
            role=role,
            agent=agent,
            inputs=inputs,
            tools=tools,
            artifacts=artifacts,
            provider=self.plan.provider,
            model=self.plan.models.get(role, ""),
            budget=self._budget(role, tokens),
            limits=self.engine._limits(memory, float(timeout)),
            quote_errors=role == "query" and not self.plan.mediated,
        )

    async def _stage(self, spec: StageSpec) -> StageResult:
        engine = self.engine
        services = engine.services

        def writer(agent_id: str, dest: Path) -> None:
            store = services.storage.tenant(self.plan.tenant_id)
            write_agent_dir(store, self.plan.tenant_id, agent_id, services.keyring, dest)

        assert engine.runner is not None
        self.stage, self.stage_started_at = spec.role, services.clock()
        result = await run_stage(
            spec, runner=engine.runner, upstream=engine.upstream, agent_dir_writer=writer
        )
        self.results[spec.role] = result
        self.remaining -= max(1, spec.budget.total_tokens) if spec.budget.calls else 0
        return result

    def _query_agent_source(self) -> QueryAgentSource:
        store = self.engine.services.storage.tenant(self.plan.tenant_id)
        agent = store.get_agent(self.plan.agents["query"].agent_id)
        if agent is None:
            raise StageError("the query agent no longer exists")
        paths = [str(r["file_path"]) for r in store.agent_files(agent["agent_id"])]
        if agent["inspection_mode"] == "sealed":
            return QueryAgentSource(paths)
        return QueryAgentSource(paths, lambda path: agent_file_content(store, agent, path))

    def _tools(self, scope_source: str | None) -> DataTools:
        store = self.engine.services.storage.tenant(self.plan.tenant_id)
        return DataTools(
            db_path=Path(store.file.path),
            allowed_tables=list(self.plan.allowed_tables),
            vault_items=list(self.plan.vault_items),
            scope_source=scope_source,
            scope_limits=ScopeLimits(timeout_s=self.engine.config.scope_call_timeout_s),
        )

    async def _scope(self) -> str:
        plan = self.plan
        inputs = {
            "role": "scope",
            "prompt": plan.prompt,
            "policy": plan.policy,
            "allowed_tables": list(plan.allowed_tables),
            "query_agent_id": plan.agents["query"].agent_id,
            "query_inspection_mode": plan.agents["query"].inspection_mode,
            "scope_mode": self.scope_mode,
            "scope_mode_reason": self.scope_mode_reason,
        }
        tokens = max(1, math.floor(self.remaining * 0.5))
        tools = dataclasses.replace(self._tools(None), query_agent=self._query_agent_source())
        result = await self._stage(self._spec("scope", inputs, tools, tokens))
        try:
            return extract_scope_fn(result.output)
        except ScopeCompileError as exc:
            raise StageError(f"Scope agent failed: {exc}") from None

    async def _query(self, scope_source: str) -> str:
        plan = self.plan
        reserve = 0
        if plan.mediated:
            reserve = min(30_000, math.floor(self.remaining * 0.3))
            reserve = min(
                max(reserve, _MIN_MEDIATOR_TOKENS), max(self.remaining - _MIN_MEDIATOR_TOKENS, 0)
            )
        artifacts = None
        if plan.allow_artifacts and not plan.mediated:
            artifacts = SealedArtifactSink(
                self.engine.artifacts_root,
                self.engine.services.keyring,
                KeyScope.room(plan.tenant_id, plan.room_id),
                plan.run_id,
            )
            self.artifacts = artifacts
        inputs = {
            "role": "query",
            "prompt": plan.prompt,
            "scope_fn_source": scope_source,
            "run_id": plan.run_id,
            "artifacts_enabled": artifacts is not None,
        }
        spec = self._spec(
            "query", inputs, self._tools(scope_source), self.remaining - reserve, artifacts
        )
        result = await self._stage(spec)
        if not result.output and plan.mediated:
            raise StageError(
                "the query agent produced no output; refusing to release an unmediated answer"
            )
        return result.output or "(Agent produced no output)"

    async def _mediate(self, raw: str) -> str:
        if self.plan.provider and self.remaining < _MIN_MEDIATOR_TOKENS:
            raise StageError(
                "the token budget left for the mediator is too small; "
                "refusing to return unmediated output"
            )
        inputs = {
            "role": "mediator",
            "prompt": self.plan.prompt,
            "policy": self.plan.policy,
            "raw_output": raw,
        }
        result = await self._stage(self._spec("mediator", inputs, None, self.remaining))
        if "mediator" not in self.results:
            raise StageError("the pinned mediator did not run")
        return result.output
