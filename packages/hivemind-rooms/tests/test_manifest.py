from __future__ import annotations

import copy
import hashlib

import pytest
from hivemind_rooms.canonical import b64_encode, canonical_json
from hivemind_rooms.manifest import (
    ManifestError,
    ManifestFailure,
    OwnerKey,
    build_manifest,
    check_room_trust,
    invite_constraints,
    manifest_hash,
    sign_manifest,
    sign_trust_update,
    validate_manifest,
    verify_signed_manifest,
    verify_trust_update,
)
from hypothesis import given
from hypothesis import strategies as st

COMPOSE = "ab" * 32
OWNER = OwnerKey.from_seed(bytes(range(32)))


def make(**overrides):
    args = {
        "room_id": "room_0123456789ab",
        "tenant_id": "t_00112233aabb",
        "owner_pubkey_b64": OWNER.public_key_b64(),
        "scope_agent_id": "default-scope",
        "created_at": 1_700_000_000,
        "name": "  demo room ",
        "rules": "Only totals.",
        "query_mode": "fixed",
        "query_agent_id": "0123456789ab",
        "query_visibility": "inspectable",
        "mediator_agent_id": "default-mediator",
        "llm_providers": ["OpenRouter", "openrouter", "tinfoil"],
        "trust_mode": "owner_approved",
        "allowed_composes": [" " + COMPOSE.upper() + " "],
        "allowed_tables": ["watch_history", "WATCH_HISTORY", "ratings"],
    }
    args.update(overrides)
    return build_manifest(**args)


def test_build_normalises_and_has_every_field():
    m = make()
    assert set(m) == {
        "schema", "room_id", "tenant_id", "name", "rules", "rules_hash", "policy", "scope",
        "query", "mediator", "output", "egress", "trust", "allowed_tables", "created_at",
        "owner_pubkey_b64",
    }  # fmt: skip
    assert m["name"] == "demo room"
    assert m["policy"] == "Only totals."
    assert m["rules_hash"] == hashlib.sha256(b"Only totals.").hexdigest()
    assert m["egress"]["llm_providers"] == ["openrouter", "tinfoil"]
    assert m["trust"]["allowed_composes"] == [COMPOSE]
    assert m["allowed_tables"] == ["watch_history", "ratings"]
    assert m["mediator"] == {"agent_id": "default-mediator", "visibility": "inspectable"}
    assert make(mediator_agent_id="")["mediator"] == {"agent_id": ""}
    assert make(rules="")["rules_hash"].startswith("e3b0c442")


def test_golden_vector_is_stable():
    m = make()
    env = sign_manifest(m, OWNER)
    data = canonical_json(m)
    assert data.startswith(
        b'{"allowed_tables":["watch_history","ratings"],"created_at":1700000000,'
    )
    assert env["manifest_hash"] == hashlib.sha256(data).hexdigest() == manifest_hash(m)
    # Ed25519 is deterministic: the same key and bytes give the same signature.
    assert sign_manifest(m, OWNER)["signature_b64"] == env["signature_b64"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"room_id": "room_XYZ"},
        {"tenant_id": "t_1"},
        {"scope_agent_id": ""},
        {"scope_visibility": "public"},
        {"query_mode": "fixed", "query_agent_id": ""},
        {"query_mode": "uploadable", "query_agent_id": "abc"},
        {"output_visibility": "everyone"},
        {"llm_providers": ["evilcorp"]},
        {"trust_mode": "pinned", "allowed_composes": []},
        {"trust_mode": "whatever"},
        {"allowed_composes": ["nothex"]},
        {"allowed_tables": ["_hidden"]},
        {"allowed_tables": ["bad-name"]},
        {"created_at": 1.5},
        {"created_at": -1},
        {"owner_pubkey_b64": "abc"},
        {"mediator_visibility": "open"},
    ],
)
def test_build_rejects_invalid_fields(overrides):
    with pytest.raises(ManifestError) as info:
        make(**overrides)
    assert info.value.failure is ManifestFailure.SCHEMA


def test_validate_rejects_unknown_and_missing_keys():
    m = make()
    with pytest.raises(ManifestError):
        validate_manifest({**m, "extra": 1})
    partial = dict(m)
    del partial["allowed_tables"]  # an "obsolete" manifest
    with pytest.raises(ManifestError):
        validate_manifest(partial)
    with pytest.raises(ManifestError):
        validate_manifest({**m, "rules_hash": "00" * 32})


def test_sign_and_verify_round_trip():
    env = sign_manifest(make(), OWNER)
    got = verify_signed_manifest(
        env, OWNER.public_key_b64(), expected_room_id="room_0123456789ab",
        expected_tenant_id="t_00112233aabb",
    )  # fmt: skip
    assert got == make()


def test_owner_key_repr_hides_secret():
    text = repr(OWNER)
    assert OWNER.export_seed().hex() not in text
    assert b64_encode(OWNER.export_seed()) not in text
    assert OWNER.public_key_b64() in text


def leaf_paths(obj, prefix=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from leaf_paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from leaf_paths(v, (*prefix, i))
    else:
        yield prefix


def mutate(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    return value + "x" if value else "x"


@pytest.mark.parametrize("path", list(leaf_paths(make())))
def test_any_single_field_change_is_rejected(path):
    """Spec 12.2 check 1: tampering with any manifest field is detected."""
    env = sign_manifest(make(), OWNER)
    target = env["manifest"]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = mutate(target[path[-1]])
    with pytest.raises(ManifestError):
        verify_signed_manifest(env, OWNER.public_key_b64())


def test_tamper_with_rehash_is_a_bad_signature():
    env = sign_manifest(make(), OWNER)
    env["manifest"]["output"]["visibility"] = "owner_and_querier"
    env["manifest_hash"] = manifest_hash(env["manifest"])
    with pytest.raises(ManifestError) as info:
        verify_signed_manifest(env, OWNER.public_key_b64())
    assert info.value.failure is ManifestFailure.BAD_SIGNATURE
    assert str(info.value) == "room manifest rejected: bad signature"


def test_hash_mismatch_class():
    env = sign_manifest(make(), OWNER)
    env["manifest_hash"] = "0" * 64
    with pytest.raises(ManifestError) as info:
        verify_signed_manifest(env, OWNER.public_key_b64())
    assert info.value.failure is ManifestFailure.HASH_MISMATCH


def test_envelope_signed_by_another_key_is_rejected():
    """Spec 12.2 check 2."""
    other = OwnerKey.generate()
    env = sign_manifest(make(owner_pubkey_b64=other.public_key_b64()), other)
    with pytest.raises(ManifestError) as info:
        verify_signed_manifest(env, OWNER.public_key_b64())
    assert info.value.failure is ManifestFailure.WRONG_OWNER_KEY
    assert verify_signed_manifest(env, other.public_key_b64())["room_id"] == "room_0123456789ab"


def test_manifest_owner_differs_from_signer_is_rejected():
    """Spec 12.2 check 3: the signer must be the manifest's owner."""
    other = OwnerKey.generate()
    with pytest.raises(ManifestError):
        sign_manifest(make(), other)
    env = sign_manifest(make(), OWNER)
    data = canonical_json(env["manifest"])
    env["signer_pubkey_b64"] = other.public_key_b64()
    env["signature_b64"] = b64_encode(other.sign(data))
    with pytest.raises(ManifestError) as info:
        verify_signed_manifest(env, other.public_key_b64())
    assert info.value.failure is ManifestFailure.WRONG_OWNER_KEY


def test_valid_manifest_for_another_room_is_rejected():
    """Spec 12.2 check 5."""
    env = sign_manifest(make(room_id="room_ffffffffffff"), OWNER)
    with pytest.raises(ManifestError) as info:
        verify_signed_manifest(env, OWNER.public_key_b64(), expected_room_id="room_0123456789ab")
    assert info.value.failure is ManifestFailure.WRONG_ROOM
    with pytest.raises(ManifestError):
        verify_signed_manifest(env, OWNER.public_key_b64(), expected_tenant_id="t_999999999999")


@pytest.mark.parametrize(
    "envelope",
    [None, [], {}, {"manifest": {}}, "text"],
)
def test_malformed_envelopes(envelope):
    with pytest.raises(ManifestError) as info:
        verify_signed_manifest(envelope, OWNER.public_key_b64())
    assert info.value.failure is ManifestFailure.SCHEMA


def test_bad_expected_key_is_wrong_owner():
    env = sign_manifest(make(), OWNER)
    with pytest.raises(ManifestError) as info:
        verify_signed_manifest(env, "not base64")
    assert info.value.failure is ManifestFailure.WRONG_OWNER_KEY


@given(st.binary(min_size=64, max_size=64))
def test_random_signatures_never_verify(sig):
    env = sign_manifest(make(), OWNER)
    if b64_encode(sig) == env["signature_b64"]:
        return
    env["signature_b64"] = b64_encode(sig)
    with pytest.raises(ManifestError):
        verify_signed_manifest(env, OWNER.public_key_b64())


def test_trust_update_round_trip_changes_hash():
    """Spec 12.2 check 8 (library part): a trust update yields a new hash."""
    old = make()
    env = sign_trust_update(
        old, OWNER, mode="pinned", allowed_composes=["cd" * 32], updated_at=1_700_000_100
    )
    new = verify_trust_update(old, env, OWNER.public_key_b64())
    assert new["trust"] == {"mode": "pinned", "allowed_composes": ["cd" * 32]}
    assert new["updated_at"] == 1_700_000_100
    assert manifest_hash(new) != manifest_hash(old)
    again = sign_trust_update(new, OWNER, allowed_composes=[COMPOSE], updated_at=1_700_000_200)
    assert verify_trust_update(new, again, OWNER.public_key_b64())["trust"]["mode"] == "pinned"


def test_trust_update_cannot_change_anything_else():
    old = make()
    changed = copy.deepcopy(old)
    changed["output"]["visibility"] = "owner_and_querier"
    env = sign_trust_update(changed, OWNER, updated_at=1_700_000_100)
    with pytest.raises(ManifestError) as info:
        verify_trust_update(old, env, OWNER.public_key_b64())
    assert info.value.failure is ManifestFailure.SCHEMA


def test_trust_update_time_must_not_go_back():
    old = make()
    with pytest.raises(ManifestError):
        sign_trust_update(old, OWNER, updated_at=1)
    newer = verify_trust_update(
        old, sign_trust_update(old, OWNER, updated_at=1_700_000_500), OWNER.public_key_b64()
    )
    stale = sign_trust_update(old, OWNER, updated_at=1_700_000_100)
    with pytest.raises(ManifestError):
        verify_trust_update(newer, stale, OWNER.public_key_b64())


def test_trust_update_by_other_key_rejected():
    other = OwnerKey.generate()
    old = make()
    with pytest.raises(ManifestError):
        sign_trust_update(old, other, updated_at=1_700_000_100)


def test_invite_constraints_snapshot():
    m = make()
    snap = invite_constraints(m)
    assert snap["room_id"] == m["room_id"]
    assert snap["room_manifest_hash"] == manifest_hash(m)
    assert snap["can_upload_query_agent"] is False
    assert snap["fixed_query_agent_id"] == "0123456789ab"
    assert snap["fixed_mediator_agent_id"] == "default-mediator"
    assert snap["query_inspection_mode"] == "full"
    assert snap["allowed_tables"] == ["watch_history", "ratings"]
    up = invite_constraints(make(query_mode="uploadable", query_agent_id="", mediator_agent_id=""))
    assert up["can_upload_query_agent"] is True
    assert "fixed_query_agent_id" not in up
    assert "fixed_mediator_agent_id" not in up
    assert up["query_inspection_mode"] == "full"


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(st.dictionaries(st.sampled_from(sorted(make())), json_like, max_size=20))
def test_fuzzed_manifests_only_raise_manifest_error(fields):
    manifest = {**make(), **fields}
    env = {
        "manifest": manifest,
        "manifest_hash": "0" * 64,
        "signature_b64": b64_encode(bytes(64)),
        "signer_pubkey_b64": OWNER.public_key_b64(),
    }
    with pytest.raises(ManifestError):
        verify_signed_manifest(env, OWNER.public_key_b64())


@given(st.text(max_size=20))
def test_surrogates_and_odd_text_never_escape_as_other_errors(text):
    try:
        m = make(name=text, rules=text)
    except ManifestError:
        return
    assert verify_signed_manifest(sign_manifest(m, OWNER), OWNER.public_key_b64()) == m


def test_room_trust_uses_the_verified_compose_hash():
    """Spec 12.2 checks 13 and 15 (library part)."""
    strict = make()  # owner_approved with COMPOSE
    check_room_trust(strict, COMPOSE)
    check_room_trust(strict, COMPOSE.upper())
    for bad in ["cd" * 32, ""]:
        with pytest.raises(ManifestError) as info:
            check_room_trust(strict, bad)
        assert info.value.failure is ManifestFailure.UNTRUSTED_DEPLOYMENT
    pinned = make(trust_mode="pinned")
    with pytest.raises(ManifestError):
        check_room_trust(pinned, "cd" * 32)
    open_room = make(trust_mode="operator_updates", allowed_composes=[])
    check_room_trust(open_room, "cd" * 32)
    check_room_trust(open_room, "")
    with pytest.raises(ManifestError) as info:
        check_room_trust({"schema": "x"}, COMPOSE)
    assert info.value.failure is ManifestFailure.SCHEMA
