"""Everything a run needs, fixed at submission: the :class:`RunPlan`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, final

__all__ = ["ROLES", "AgentRef", "RunPlan"]

ROLES = ("scope", "query", "mediator")


@final
@dataclasses.dataclass(frozen=True)
class AgentRef:
    """One stage's agent as registered: id, digest and its own limits."""

    agent_id: str
    digest: str
    attested_digest: str
    inspection_mode: str
    memory_mb: int
    timeout_s: int
    max_llm_calls: int


@final
@dataclasses.dataclass(frozen=True)
class RunPlan:
    """A run that passed preflight and holds its money.

    Attributes:
        run_id: The run.
        tenant_id: The room owner's tenant (where the run row lives).
        room_id: The room.
        manifest_hash: The room manifest hash.
        prompt: The question (kept in memory; stored only when inspectable).
        policy: The room policy.
        allowed_tables: The manifest's table allowlist.
        agents: The agent of each stage present (mediator optional).
        provider: The provider of every stage ("" means no LLM egress).
        models: The model fixed for each stage ("" without egress).
        vault_items: The opened room items (memory only).
        max_tokens: The run's token budget.
        max_calls: The request's LLM-call limit, if any.
        timeout_s: The request's stage timeout, if any.
        allow_artifacts: Whether the room allows artifacts.
        payer_tenant_id: Who pays.
        payer_token_id: Which key paid.
        hold_micro_usd: The hold placed at submission.
    """

    run_id: str
    tenant_id: str
    room_id: str
    manifest_hash: str
    prompt: str = dataclasses.field(repr=False)
    policy: str = dataclasses.field(repr=False)
    allowed_tables: Sequence[str]
    agents: Mapping[str, AgentRef]
    provider: str
    models: Mapping[str, str]
    vault_items: Sequence[Mapping[str, Any]] = dataclasses.field(repr=False)
    max_tokens: int
    max_calls: int | None
    timeout_s: int | None
    allow_artifacts: bool
    payer_tenant_id: str
    payer_token_id: str
    hold_micro_usd: int

    @property
    def mediated(self) -> bool:
        """Whether a mediator is pinned."""
        return "mediator" in self.agents
