from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from hivemind_rooms.agents_registry import AgentError, read_archive
from hivemind_rooms.api._body import Field, parse
from hivemind_rooms.api._errors import ApiError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

_spec = importlib.util.spec_from_file_location(
    "api_support", Path(__file__).with_name("api_support.py")
)
sup = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sup)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
SCHEMA = {
    "name": Field((str,), required=True, max_len=10),
    "n": Field((int,), default=1),
    "flag": Field((bool,), default=False),
}


def _acceptable(value) -> bool:
    if not isinstance(value, dict) or not set(value) <= set(SCHEMA):
        return False
    name, n, flag = value.get("name"), value.get("n", 1), value.get("flag", False)
    return isinstance(name, str) and len(name) <= 10 and type(n) is int and type(flag) is bool


@given(json_values)
def test_parse_accepts_exactly_the_schema(value) -> None:
    if _acceptable(value):
        out = parse(value, SCHEMA)
        assert out == {"n": 1, "flag": False, **value}
    else:
        with pytest.raises(ApiError) as err:
            parse(value, SCHEMA)
        assert err.value.status == 422
        assert isinstance(err.value.detail, list)
        assert err.value.detail


@given(st.binary(max_size=512))
def test_archive_reader_only_raises_its_own_error(data: bytes) -> None:
    with pytest.raises(AgentError):
        read_archive(b"\x1f\x8b" + data, max_archive_bytes=4096)


@pytest.mark.parametrize(
    "path", ["/v1/admin/tenants", "/v1/admin/credit-codes", "/v1/admin/billing/prices"]
)
def test_admin_bodies_never_break_the_server(tmp_path: Path, path: str) -> None:
    with sup.client(tmp_path) as c:

        @settings(
            max_examples=40,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture],
        )
        @given(json_values)
        def run(value) -> None:
            r = c.post(
                path,
                content=json.dumps(value).encode(),
                headers={**sup.admin_headers(), "Content-Type": "application/json"},
            )
            assert r.status_code in (200, 400, 404, 409, 422), r.text
            assert isinstance(r.json(), dict)

        run()
