"""Room runs through the HTTP API (``create_app``) with the local runner enabled."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "test_pipeline_support", Path(__file__).with_name("test_pipeline_support.py")
)
rs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rs)
sup = rs.sup


def test_owner_run_scoped_and_mediated(tmp_path: Path) -> None:
    with rs.client(tmp_path) as c:
        t = sup.new_tenant(c)
        rs.seed(c, t["api_key"])
        room = rs.make_room(c, t, policy="hide: email\nredact: Porto")
        run = rs.ask(c, room, t["api_key"], "who lives where?")
        assert run["status"] == "completed", run["error"]
        out = run["output"]
        assert "Lisbon" in out
        assert "Ann" in out
        assert "@example.org" not in out  # hidden by the scope function
        assert "Porto" not in out
        assert "[redacted]" in out
        assert "CANARY-OTHER-TABLE" not in out
        stages = run["usage"]["stages"]
        assert set(stages) == {"scope", "query", "mediator"}
        assert stages["query"]["tool_call_counts"]["execute_sql"] >= 1
        assert run["attestation"] is not None
        assert run["attestation"]["body"]["agents"]["mediator"]["agent_id"] == room["mediator_id"]
