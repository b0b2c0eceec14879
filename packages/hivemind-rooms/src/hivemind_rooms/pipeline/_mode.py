"""How much work the scope stage is told to do (``fast`` or ``rehearsed``), and why.

The mode is a hint to the scope agent, recorded in the run's usage; the
bridge offers the same tools in every mode. First match wins: an operator
override, a sealed query agent, room vault items, a query agent that is not
a built-in default, an artifact-style prompt, a complex policy.
"""

from __future__ import annotations

from typing import Final

from ._config import SCOPE_MODES
from ._plan import RunPlan

__all__ = ["scope_mode"]

_ARTIFACT_WORDS: Final = ("artifact", "attachment", "deep research", "file", "memo", "pdf",
                          "report", "research", "study", "writeup")  # fmt: skip
_POLICY_WORDS: Final = ("except", "unless", "not allowed", "forbidden", "must not",
                        "only allow", "artifact", "vault", "row-level")  # fmt: skip


def scope_mode(plan: RunPlan, override: str = "") -> tuple[str, str]:
    """Return ``(mode, reason)`` for a run.

    Args:
        plan: The run.
        override: The operator's forced mode (``EngineConfig.scope_mode``,
            checked at start-up), or empty.

    Raises:
        ValueError: ``override`` is not empty and not a known mode.
    """
    if override and override not in SCOPE_MODES:
        raise ValueError(f"unknown scope mode {override!r}")
    query = plan.agents["query"]
    prompt, policy = plan.prompt.lower(), plan.policy.lower()
    if override:
        return override, "operator_override"
    if query.inspection_mode == "sealed":
        return "sealed_conservative", "query_agent_inspection_mode_sealed"
    if plan.vault_items:
        return "rehearsed", "room_vault_items_present"
    if not query.agent_id.startswith("default-"):
        return "rehearsed", "custom_or_uploaded_query_agent"
    if plan.allow_artifacts and any(w in prompt for w in _ARTIFACT_WORDS):
        return "rehearsed", "artifact_or_report_prompt"
    if len(policy) >= 300 or sum(w in policy for w in _POLICY_WORDS) >= 2:
        return "rehearsed", "complex_policy"
    return "fast", "default_fast_path"
