from __future__ import annotations

import json

import pytest
from hivemind_rooms.canonical import (
    MAX_SAFE_INTEGER,
    CanonicalError,
    b64_decode,
    b64_encode,
    b64u_decode,
    b64u_encode,
    canonical_json,
    sha256_hex,
)
from hypothesis import given
from hypothesis import strategies as st

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | st.text(st.characters(blacklist_categories=("Cs",))),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def test_known_answer_sorted_compact_utf8():
    obj = {"b": [1, True, None], "a": {"z": "é", "y": "\n\u0001"}, "": 0}
    expected = '{"":0,"a":{"y":"\\n\\u0001","z":"é"},"b":[1,true,null]}'.encode()
    assert canonical_json(obj) == expected
    assert sha256_hex(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_keys_sorted_by_utf16_code_units_like_jcs():
    # U+10000 is D800 DC00 in UTF-16, which sorts before U+FB01 (code point order says otherwise).
    obj = {"\ufb01": 1, "\U00010000": 2}
    assert canonical_json(obj) == '{"\U00010000":2,"\ufb01":1}'.encode()


@pytest.mark.parametrize(
    "bad", [1.5, {"a": 0.0}, {1: "x"}, 2**53, -(2**53), "\ud800", b"x", {"s": {1, 2}}]
)
def test_refuses_non_canonical_values(bad):
    with pytest.raises(CanonicalError):
        canonical_json(bad)


def test_refuses_deep_nesting():
    obj: list = []
    for _ in range(100):
        obj = [obj]
    with pytest.raises(CanonicalError):
        canonical_json(obj)


@given(json_values)
def test_round_trip_and_matches_python_sorted_dump_for_bmp_keys(value):
    data = canonical_json(value)
    assert json.loads(data) == json.loads(json.dumps(value))
    assert canonical_json(json.loads(data)) == data


@given(st.binary(max_size=80))
def test_base64_round_trips(data):
    assert b64_decode(b64_encode(data)) == data
    assert b64u_decode(b64u_encode(data)) == data
    assert "=" not in b64u_encode(data)


@pytest.mark.parametrize("bad", ["AAE", "AA==A", "AB==", "A+/=", "AAE=\n", " AAE=", "AA-_", 5])
def test_b64_refuses_non_canonical(bad):
    with pytest.raises(CanonicalError):
        b64_decode(bad)


@pytest.mark.parametrize("bad", ["AB", "A", "AA==", "AA+/", "AAE=", "A B"])
def test_b64u_refuses_non_canonical(bad):
    with pytest.raises(CanonicalError):
        b64u_decode(bad)


def test_length_is_enforced():
    with pytest.raises(CanonicalError):
        b64_decode(b64_encode(b"x" * 31), length=32)
    with pytest.raises(CanonicalError):
        b64u_decode(b64u_encode(b"x" * 33), length=32)
    assert b64_decode(b64_encode(b"x" * 32), length=32) == b"x" * 32
