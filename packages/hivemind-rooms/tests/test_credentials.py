from __future__ import annotations

import base64
import hashlib
import re

import pytest
from hivemind_rooms import credentials as c
from hivemind_rooms.credentials import CredentialError, CredentialHasher, CredentialKind
from hypothesis import given
from hypothesis import strategies as st

PEPPER = bytes(range(32))


def counter_rng():
    state = {"n": 0}

    def rng(n: int) -> bytes:
        state["n"] += 1
        return bytes([state["n"] % 256]) * n

    return rng


@pytest.mark.parametrize("kind", list(CredentialKind))
def test_credential_format_and_classification(kind):
    token = c.new_credential(kind)
    assert re.fullmatch(re.escape(kind.value) + r"[A-Za-z0-9_-]{43}", token)
    assert c.credential_kind(token) is kind
    assert c.new_credential(kind) != token


def test_invite_is_47_chars_like_the_link_format():
    assert len(c.new_credential(CredentialKind.INVITE)) == 47


def test_injected_rng_is_used_and_deterministic():
    a = c.new_credential(CredentialKind.OWNER, rng=counter_rng())
    b = c.new_credential(CredentialKind.OWNER, rng=counter_rng())
    expected = base64.urlsafe_b64encode(b"\x01" * 32).rstrip(b"=").decode()
    assert a == b == "hmk_" + expected


def test_rng_returning_wrong_length_is_refused():
    with pytest.raises(CredentialError):
        c.new_credential(CredentialKind.OWNER, rng=lambda n: b"\x00")


@pytest.mark.parametrize(
    ("factory", "pattern"),
    [
        (c.new_tenant_id, r"t_[0-9a-f]{12}"),
        (c.new_room_id, r"room_[0-9a-f]{12}"),
        (c.new_agent_id, r"[0-9a-f]{12}"),
        (c.new_run_id, r"[0-9a-f]{12}"),
        (c.new_item_id, r"rvi_[0-9a-f]{16}"),
        (c.new_credit_code_id, r"cc_[0-9a-f]{16}"),
        (c.new_redemption_id, r"ccr_[0-9a-f]{24}"),
        (c.new_ledger_entry_id, r"ble_[0-9a-f]{24}"),
    ],
)
def test_identifier_formats(factory, pattern):
    assert re.fullmatch(pattern, factory())


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "hmk_",
        "hmk_" + "a" * 42,
        "hmk_" + "a" * 44,
        "hmx_" + "a" * 43,
        "hmk_" + "a" * 42 + "=",
        7,
    ],
)
def test_malformed_credentials_are_refused(bad):
    with pytest.raises(CredentialError):
        c.credential_kind(bad)


def test_stored_form_never_contains_the_token():
    hasher = CredentialHasher(PEPPER)
    for kind in CredentialKind:
        token = c.new_credential(kind)
        stored = hasher.digest(token)
        assert re.fullmatch(r"[0-9a-f]{64}", stored)
        assert token not in stored
        assert token[4:] not in stored
        assert token[4:20] not in stored
        assert hasher.verify(token, stored)


def test_digest_depends_on_pepper_and_kind():
    token = c.new_credential(CredentialKind.INVITE)
    other = CredentialHasher(bytes(32))
    assert CredentialHasher(PEPPER).digest(token) != other.digest(token)
    # the same random body under another kind prefix gets another digest
    as_owner = "hmk_" + token[4:]
    assert CredentialHasher(PEPPER).digest(as_owner) != CredentialHasher(PEPPER).digest(token)


@given(st.text(max_size=60))
def test_verify_never_raises_and_rejects_wrong_tokens(garbage):
    hasher = CredentialHasher(PEPPER)
    token = c.new_credential(CredentialKind.OWNER)
    stored = hasher.digest(token)
    assert hasher.verify(garbage, stored) is (garbage == token)


def test_verify_rejects_other_token_and_bad_stored_value():
    hasher = CredentialHasher(PEPPER)
    t1, t2 = c.new_credential(CredentialKind.OWNER), c.new_credential(CredentialKind.OWNER)
    assert not hasher.verify(t2, hasher.digest(t1))
    assert not hasher.verify(t1, None)  # type: ignore[arg-type]


def test_short_pepper_refused_and_repr_hides_it():
    with pytest.raises(CredentialError):
        CredentialHasher(b"short")
    assert PEPPER.hex() not in repr(CredentialHasher(PEPPER))
    assert len(CredentialHasher.generate_pepper()) == 32


def test_token_id_is_sha256_prefix():
    assert c.token_id("hmq_abc") == hashlib.sha256(b"hmq_abc").hexdigest()[:12]


def test_admin_key_matching():
    key = c.new_credential(CredentialKind.ADMIN)
    assert c.admin_key_matches(key, key)
    assert not c.admin_key_matches(key + "x", key)
    assert not c.admin_key_matches(key, "")
    assert not c.admin_key_matches("", "")
    assert not c.admin_key_matches(None, key)
