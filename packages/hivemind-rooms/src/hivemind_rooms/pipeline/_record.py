"""Run rows: status changes, results and recovery after a restart.

The tenant store offers inserts and reads of runs; the pipeline's updates go
through its SQLite file here, one statement each.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["finish_run", "mark_running", "recover_interrupted", "scrub_expired_runs"]

INTERRUPTED = "the run was interrupted by a service restart"


def _update(store: Any, run_id: str, fields: Mapping[str, Any]) -> int:
    sets = ", ".join(f"{k} = ?" for k in fields)
    return int(
        store.file.execute(
            f"UPDATE _hivemind_query_runs SET {sets} WHERE run_id = ?", (*fields.values(), run_id)
        )
    )


def mark_running(store: Any, run_id: str, now: float) -> None:
    """Move a pending run to running."""
    _update(store, run_id, {"status": "running", "updated_at": now})


def finish_run(store: Any, run_id: str, fields: Mapping[str, Any]) -> None:
    """Store the final state of a run (status, output or error, usage, billing, attestation)."""
    row = dict(fields)
    if "usage" in row:
        row["usage_json"] = json.dumps(row.pop("usage"), sort_keys=True, separators=(",", ":"))
    if "attestation" in row and row["attestation"] is not None:
        row["attestation"] = json.dumps(row["attestation"], sort_keys=True, separators=(",", ":"))
    _update(store, run_id, row)


def recover_interrupted(services: Any) -> int:
    """Fail every pending or running run (none survive a restart) and release holds.

    Holds are returned by the ledger's own reconciliation
    (:meth:`Billing.release_orphan_holds`); this marks the rows.

    Returns:
        The number of runs marked failed.
    """
    services.billing.release_orphan_holds()
    now = services.clock()
    count = 0
    for tenant in services.storage.control.list_tenants():
        store = services.storage.tenant(tenant["id"])
        count += int(
            store.file.execute(
                "UPDATE _hivemind_query_runs SET status = 'failed', error = ?, updated_at = ?, "
                "billing_status = CASE WHEN billing_hold_micro_usd > 0 THEN 'released' "
                "ELSE billing_status END, billing_settled_at = ? "
                "WHERE status IN ('pending', 'running')",
                (INTERRUPTED, now, now),
            )
        )
    return count


_PAYLOAD_COLUMNS = ("prompt", "output", "error", "usage_json", "attestation")


def scrub_expired_runs(services: Any, retention_s: float, now: float) -> int:
    """Clear the payload of finished runs last updated more than ``retention_s`` ago.

    Prompt, output, error, usage and attestation are set to NULL; the row
    keeps its metadata (ids, status, times, billing), which the ledger and
    the admin views rely on.

    Returns:
        The number of runs scrubbed.
    """
    cutoff = now - retention_s
    sets = ", ".join(f"{c} = NULL" for c in _PAYLOAD_COLUMNS)
    present = " OR ".join(f"{c} IS NOT NULL" for c in _PAYLOAD_COLUMNS)
    count = 0
    for tenant in services.storage.control.list_tenants():
        store = services.storage.tenant(tenant["id"])
        count += int(
            store.file.execute(
                f"UPDATE _hivemind_query_runs SET {sets} "
                f"WHERE status IN ('completed', 'failed') AND updated_at < ? AND ({present})",
                (cutoff,),
            )
        )
    return count
