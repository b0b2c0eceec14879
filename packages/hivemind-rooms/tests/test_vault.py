from __future__ import annotations

import dataclasses
import json

import pytest
from hivemind_rooms.credentials import CredentialKind, new_credential, token_id
from hivemind_rooms.vault import (
    DEFAULT_KDF,
    FAST_KDF,
    KdfParams,
    KeyScope,
    KeyWrap,
    SecretKey,
    VaultAuthError,
    VaultDecryptError,
    VaultKeyring,
    VaultLocked,
    key_check_value,
    new_secret_key,
    open_blob,
    open_item,
    seal_blob,
    seal_item,
    unwrap_key,
    wrap_key,
)
from hypothesis import given, settings
from hypothesis import strategies as st

ROOM_A = KeyScope.room("t_000000000001", "room_aaaaaaaaaaaa")
ROOM_B = KeyScope.room("t_000000000001", "room_bbbbbbbbbbbb")
ROOM_A_OTHER_TENANT = KeyScope.room("t_000000000002", "room_aaaaaaaaaaaa")


def make_room(scope, owner, invite):
    """Create a room key with an owner wrap and an invite wrap (as room creation does)."""
    key = new_secret_key()
    wraps = {
        "owner": wrap_key(key, scope, "owner", owner, kdf=FAST_KDF),
        f"query:{token_id(invite)}": wrap_key(
            key, scope, f"query:{token_id(invite)}", invite, kdf=FAST_KDF
        ),
    }
    return key, key_check_value(key, scope), wraps


@pytest.fixture
def creds():
    return {
        "owner": new_credential(CredentialKind.OWNER),
        "invite_a": new_credential(CredentialKind.INVITE),
        "invite_b": new_credential(CredentialKind.INVITE),
    }


def test_wrap_round_trip_owner_and_invite(creds):
    key, check, wraps = make_room(ROOM_A, creds["owner"], creds["invite_a"])
    assert unwrap_key(wraps["owner"], ROOM_A, creds["owner"], check) == key
    qid = f"query:{token_id(creds['invite_a'])}"
    assert unwrap_key(wraps[qid], ROOM_A, creds["invite_a"], check) == key


def test_invite_unwraps_only_its_own_rooms_key(creds):
    """Spec 12.2: an invite token opens its own room and nothing else."""
    _, check_a, wraps_a = make_room(ROOM_A, creds["owner"], creds["invite_a"])
    _, check_b, wraps_b = make_room(ROOM_B, creds["owner"], creds["invite_b"])
    wrap_b = wraps_b[f"query:{token_id(creds['invite_b'])}"]
    wrap_a = wraps_a[f"query:{token_id(creds['invite_a'])}"]
    with pytest.raises(VaultAuthError):
        unwrap_key(wrap_b, ROOM_B, creds["invite_a"], check_b)
    # Room A's wrap moved into room B (or another tenant) does not open either.
    with pytest.raises(VaultAuthError):
        unwrap_key(wrap_a, ROOM_B, creds["invite_a"], check_b)
    with pytest.raises(VaultAuthError):
        unwrap_key(wrap_a, ROOM_A_OTHER_TENANT, creds["invite_a"], check_a)


def test_wrap_bound_to_its_wrap_id(creds):
    _key, check, wraps = make_room(ROOM_A, creds["owner"], creds["invite_a"])
    relabelled = dataclasses.replace(wraps["owner"], wrap_id="share:000000000000")
    with pytest.raises(VaultAuthError):
        unwrap_key(relabelled, ROOM_A, creds["owner"], check)


def test_kek_check_passes_but_aead_fails_on_tampered_ciphertext(creds):
    _, check, wraps = make_room(ROOM_A, creds["owner"], creds["invite_a"])
    w = wraps["owner"]
    bad = dataclasses.replace(w, ciphertext=bytes([w.ciphertext[0] ^ 1]) + w.ciphertext[1:])
    with pytest.raises(VaultAuthError):
        unwrap_key(bad, ROOM_A, creds["owner"], check)


def test_wrap_of_another_key_is_refused_by_the_key_check(creds):
    """A wrap smuggled into the table that encrypts some other key does not open."""
    _, check, _ = make_room(ROOM_A, creds["owner"], creds["invite_a"])
    attacker_key = new_secret_key()
    smuggled = wrap_key(attacker_key, ROOM_A, "owner", creds["owner"], kdf=FAST_KDF)
    with pytest.raises(VaultAuthError):
        unwrap_key(smuggled, ROOM_A, creds["owner"], check)


def test_item_round_trip_and_binding(creds):
    """Spec 12.2 check 26: a ciphertext moved to another item, room or tenant fails."""
    key_a, _, _ = make_room(ROOM_A, creds["owner"], creds["invite_a"])
    key_b, _, _ = make_room(ROOM_B, creds["owner"], creds["invite_b"])
    blob = seal_item(key_a, ROOM_A, "rvi_0000000000000001", "CANARY-123", {"source": "x"})
    assert open_item(key_a, ROOM_A, "rvi_0000000000000001", blob) == (
        "CANARY-123",
        {"source": "x"},
    )
    assert b"CANARY" not in blob
    assert b"source" not in blob  # metadata is sealed too
    for key, scope, item in [
        (key_a, ROOM_A, "rvi_0000000000000002"),
        (key_a, ROOM_B, "rvi_0000000000000001"),
        (key_a, ROOM_A_OTHER_TENANT, "rvi_0000000000000001"),
        (key_b, ROOM_B, "rvi_0000000000000001"),
    ]:
        with pytest.raises(VaultDecryptError):
            open_item(key, scope, item, blob)


def test_blob_labels_separate_items_from_agent_files(creds):
    key, _, _ = make_room(ROOM_A, creds["owner"], creds["invite_a"])
    blob = seal_blob(key, ROOM_A, "agent-file", ("agent1", "main.py"), b"print(1)")
    assert open_blob(key, ROOM_A, "agent-file", ("agent1", "main.py"), blob) == b"print(1)"
    with pytest.raises(VaultDecryptError):
        open_blob(key, ROOM_A, "agent-file", ("agent1", "other.py"), blob)
    with pytest.raises(VaultDecryptError):
        open_blob(key, ROOM_A, "item", ("agent1", "main.py"), blob)
    # Length-prefixed context: ("a|b", "c") and ("a", "b|c") differ.
    blob2 = seal_blob(key, ROOM_A, "agent-file", ("a|b", "c"), b"x")
    with pytest.raises(VaultDecryptError):
        open_blob(key, ROOM_A, "agent-file", ("a", "b|c"), blob2)


@settings(max_examples=50)
@given(st.integers(min_value=0), st.integers(min_value=0, max_value=7))
def test_any_bit_flip_fails(position, bit):
    key = SecretKey(bytes(32))
    blob = seal_blob(key, ROOM_A, "item", ("rvi_1",), b"hello world")
    i = position % len(blob)
    flipped = blob[:i] + bytes([blob[i] ^ (1 << bit)]) + blob[i + 1 :]
    with pytest.raises(VaultDecryptError):
        open_blob(key, ROOM_A, "item", ("rvi_1",), flipped)


@pytest.mark.parametrize("blob", [b"", b"x" * 39, "text"])
def test_short_or_wrong_type_blobs(blob):
    with pytest.raises(VaultDecryptError):
        open_blob(SecretKey(bytes(32)), ROOM_A, "item", ("i",), blob)


def test_restart_property(creds):
    """Spec 12.2 check 23: after a restart reads fail until a credential is presented."""
    key, check, wraps = make_room(ROOM_A, creds["owner"], creds["invite_a"])
    before = VaultKeyring()
    before.install(ROOM_A, key)
    blob = seal_item(before.get(ROOM_A), ROOM_A, "rvi_1", "secret", {})
    stored = {k: json.dumps(w.to_dict()) for k, w in wraps.items()}  # what the DB keeps

    after = VaultKeyring()  # a new process
    assert not after.is_open(ROOM_A)
    with pytest.raises(VaultLocked):
        after.get(ROOM_A)
    qid = f"query:{token_id(creds['invite_a'])}"
    wrap = KeyWrap.from_dict(json.loads(stored[qid]))
    opened = after.open(ROOM_A, wrap, creds["invite_a"], check)
    assert open_item(after.get(ROOM_A), ROOM_A, "rvi_1", blob) == ("secret", {})
    assert opened == key


def test_wrong_credential_never_populates_the_keyring(creds):
    """Spec 12.2 check 24."""
    _, check, wraps = make_room(ROOM_A, creds["owner"], creds["invite_a"])
    ring = VaultKeyring()
    with pytest.raises(VaultAuthError):
        ring.open(ROOM_A, wraps["owner"], creds["invite_b"], check)
    assert not ring.is_open(ROOM_A)
    with pytest.raises(VaultLocked):
        ring.get(ROOM_A)


def test_cached_key_needs_the_callers_own_credential(creds):
    """Spec 12.2 check 25: a warm cache does not skip the credential check."""
    _, check, wraps = make_room(ROOM_A, creds["owner"], creds["invite_a"])
    ring = VaultKeyring()
    ring.open(ROOM_A, wraps["owner"], creds["owner"], check)
    assert ring.is_open(ROOM_A)
    reset_owner_key = new_credential(CredentialKind.OWNER)
    with pytest.raises(VaultAuthError):
        ring.open(ROOM_A, wraps["owner"], reset_owner_key, check)
    # the same valid credential is accepted again (fast path)
    assert ring.open(ROOM_A, wraps["owner"], creds["owner"], check) == ring.get(ROOM_A)


def test_forget_locks_again(creds):
    _, check, wraps = make_room(ROOM_A, creds["owner"], creds["invite_a"])
    ring = VaultKeyring()
    ring.open(ROOM_A, wraps["owner"], creds["owner"], check)
    ring.forget(ROOM_A)
    with pytest.raises(VaultLocked):
        ring.get(ROOM_A)
    assert "open_scopes=0" in repr(ring)


def test_stored_wrap_holds_no_secret(creds):
    key, _, wraps = make_room(ROOM_A, creds["owner"], creds["invite_a"])
    text = json.dumps([w.to_dict() for w in wraps.values()])
    assert creds["owner"] not in text
    assert creds["invite_a"] not in text
    assert key.raw().hex() not in text
    assert key.raw() not in text.encode()
    assert "hidden" in repr(key)
    assert key.raw().hex() not in repr(key)


@pytest.mark.parametrize(
    "mutation",
    [
        lambda d: d.update(v=2),
        lambda d: d["kdf"].update(alg="scrypt"),
        lambda d: d["kdf"].update(mem=1 << 40),
        lambda d: d["kdf"].update(ops=0),
        lambda d: d.update(salt="AAAA"),
        lambda d: d.update(nonce="not base64"),
        lambda d: d.pop("ciphertext"),
        lambda d: d.update(wrap_id=5),
    ],
)
def test_malformed_stored_wraps_are_refused(creds, mutation):
    _, _, wraps = make_room(ROOM_A, creds["owner"], creds["invite_a"])
    data = json.loads(json.dumps(wraps["owner"].to_dict()))
    mutation(data)
    with pytest.raises(VaultAuthError):
        KeyWrap.from_dict(data)


def test_default_kdf_profile_is_used_by_default_and_works():
    key = new_secret_key()
    cred = new_credential(CredentialKind.OWNER)
    wrap = wrap_key(key, ROOM_A, "owner", cred)
    assert wrap.kdf == DEFAULT_KDF
    assert DEFAULT_KDF.memlimit >= 64 * 1024 * 1024
    assert unwrap_key(wrap, ROOM_A, cred, key_check_value(key, ROOM_A)) == key


def test_tenant_seal_scope(creds):
    tenant = KeyScope.tenant("t_000000000001")
    key = new_secret_key()
    check = key_check_value(key, tenant)
    owner_wrap = wrap_key(key, tenant, "owner", creds["owner"], kdf=FAST_KDF)
    ring = VaultKeyring()
    with pytest.raises(VaultLocked):
        ring.get(tenant)
    ring.open(tenant, owner_wrap, creds["owner"], check)
    blob = seal_blob(ring.get(tenant), tenant, "agent-file", ("ag1", "a.py"), b"src")
    assert open_blob(key, tenant, "agent-file", ("ag1", "a.py"), blob) == b"src"
    # a room wrap is not a tenant wrap
    with pytest.raises(VaultAuthError):
        unwrap_key(owner_wrap, ROOM_A, creds["owner"], check)
    assert ring.is_open(tenant)
    assert not ring.is_open(ROOM_A)


def test_scope_and_params_validation():
    with pytest.raises(ValueError):
        KeyScope("room", "t_1")
    with pytest.raises(ValueError):
        KeyScope("tenant", "t_1", "room_x")
    with pytest.raises(ValueError):
        KdfParams(opslimit=100, memlimit=8192)
    with pytest.raises(ValueError):
        SecretKey(b"short")
    with pytest.raises(ValueError):
        wrap_key(new_secret_key(), ROOM_A, "owner", "", kdf=FAST_KDF)
