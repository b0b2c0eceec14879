"""Our stores against the released hivemind-core 4.0.0 client database (JSON backend).

The released code runs in its own virtualenv (``HIVEMIND_INTEROP_PYTHON``).
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap

import pytest
from hivemind_hub.store import JSONClientStore

pytestmark = pytest.mark.interop

UPSTREAM_DB = """
import json, sys
from hivemind_core.database import ClientDatabase
cfg = {"module": "hivemind-json-db-plugin",
       "hivemind-json-db-plugin": {"name": "clients", "subfolder": "hivemind-core"}}
"""


@pytest.fixture
def upstream(tmp_path, interop_python):
    python = interop_python
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }

    def run(body):
        script = UPSTREAM_DB + textwrap.dedent(body)
        proc = subprocess.run(
            [python, "-c", script], env=env, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    return run


def test_we_read_upstream_records_and_refuse_its_tombstone(upstream, tmp_path):
    upstream_view = upstream(
        """
        with ClientDatabase(cfg) as db:
            db.add_client("kitchen", key="k1", password="pw1",
                          crypto_key="0123456789abcdef", skill_blacklist=["s"], admin=True)
            db.add_client("gone", key="k2", password="pw2")
            db.delete_client("k2")
            print(json.dumps({"revoked_found": db.get_client_by_api_key("revoked") is not None}))
        """
    )
    # The released store does find its own tombstone for the key "revoked" (W2).
    assert upstream_view == {"revoked_found": True}
    store = JSONClientStore(tmp_path / "data" / "hivemind-core" / "clients.json")
    kitchen = store.get_by_access_key("k1")
    assert kitchen.name == "kitchen"
    assert kitchen.is_admin is True
    assert kitchen.password == "pw1"
    assert kitchen.crypto_key == "0123456789abcdef"
    assert kitchen.skill_blacklist == ("s",)
    assert "recognizer_loop:utterance" in kitchen.allowed_types
    assert store.get_by_access_key("revoked") is None
    assert store.get_by_access_key("k2") is None
    assert store.create(api_key="k3").client_id == 3


def test_upstream_reads_records_we_write(upstream, tmp_path):
    store = JSONClientStore(tmp_path / "data" / "hivemind-core" / "clients.json")
    store.create(
        api_key="ours",
        name="sat",
        password="secret-pw",
        is_admin=True,
        allowed_types=["speak", "recognizer_loop:utterance"],
        metadata={"intent_blacklist": ["i"], "tier": "pro"},
    )
    seen = upstream(
        """
        with ClientDatabase(cfg) as db:
            c = db.get_client_by_api_key("ours")
            print(json.dumps({"id": c.client_id, "name": c.name, "admin": c.is_admin,
                              "password": c.password, "types": c.allowed_types,
                              "metadata": c.metadata}))
        """
    )
    assert seen == {
        "id": 1,
        "name": "sat",
        "admin": True,
        "password": "secret-pw",
        "types": ["speak", "recognizer_loop:utterance"],
        "metadata": {"intent_blacklist": ["i"], "tier": "pro"},
    }
