"""The live progress line reads the service's progress while a run executes."""

from __future__ import annotations

from hmctl._cmd_room import _usage_text
from hmctl.client.runs import RunBudget, run_stage


def test_stage_comes_from_live_progress() -> None:
    running = {"status": "running", "progress": {"stage": "mediator", "llm_calls": 2}}
    assert run_stage(running) == "mediator"
    assert run_stage({"status": "pending", "progress": None}) == "queued"
    assert run_stage({"status": "running"}) == "running"
    assert run_stage({"status": "completed", "progress": {"stage": "query"}}) == "completed"


def test_budget_used_comes_from_progress_then_final_usage() -> None:
    budget = RunBudget(max_llm_calls=5, max_tokens=1000)
    live = {"progress": {"llm_calls": 2, "total_tokens": 300}, "usage": None}
    assert _usage_text(live, budget) == "LLM calls 2/5, tokens 300/1000"
    final = {"progress": None, "usage": {"calls": 4, "total_tokens": 900}}
    assert _usage_text(final, budget) == "LLM calls 4/5, tokens 900/1000"
