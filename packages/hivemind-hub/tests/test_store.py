from __future__ import annotations

import threading

import pytest
from hivemind_hub import (
    Client,
    ClientNotFoundError,
    DuplicateAccessKeyError,
    InvalidClientError,
)
from hivemind_hub.store import ChangeKind, ClientStore


def make(store, key="key-1", **fields):
    return store.create(api_key=key, **fields)


def test_store_satisfies_protocol(store):
    assert isinstance(store, ClientStore)


def test_create_assigns_increasing_ids(store):
    a = make(store, "a")
    b = make(store, "b", name="bee", password="pw", allowed_types=["speak"])
    assert (a.client_id, b.client_id) == (1, 2)
    assert store.get(2) == b
    assert store.get(99) is None
    assert len(store) == 2
    assert [c.client_id for c in store.list_clients()] == [1, 2]


def test_lookup_by_access_key(store):
    make(store, "a")
    b = make(store, "b")
    assert store.get_by_access_key("b") == b
    assert store.get_by_access_key("c") is None
    assert store.get_by_access_key("") is None


def test_duplicate_access_key_rejected(store):
    make(store, "a")
    with pytest.raises(DuplicateAccessKeyError):
        make(store, "a")


@pytest.mark.parametrize("key", ["", "revoked"])
def test_reserved_access_keys_cannot_be_created(store, key):
    with pytest.raises(InvalidClientError):
        make(store, key)


def test_update_changes_and_persists(store, store_kind, open_kind):
    client = make(store, "a")
    updated = store.update(client.client_id, name="new", allowed_types=["speak"], is_admin=True)
    assert updated.name == "new"
    again = open_kind(store_kind).get(client.client_id)
    assert again == updated


def test_update_unknown_id(store):
    with pytest.raises(ClientNotFoundError):
        store.update(7, name="x")


def test_update_to_taken_key_rejected(store):
    make(store, "a")
    b = make(store, "b")
    with pytest.raises(DuplicateAccessKeyError):
        store.update(b.client_id, api_key="a")
    assert store.get_by_access_key("b") == b


def test_update_to_new_key_moves_lookup(store):
    a = make(store, "a")
    store.update(a.client_id, api_key="z")
    assert store.get_by_access_key("a") is None
    assert store.get_by_access_key("z").client_id == a.client_id


def test_delete_removes_and_ids_are_never_reused(store, store_kind, open_kind):
    make(store, "a")
    b = make(store, "b")
    removed = store.delete(b.client_id)
    assert removed == b
    assert store.get(b.client_id) is None
    assert store.get_by_access_key("b") is None
    c = make(store, "c")
    assert c.client_id == 3
    # The mark survives reopening.
    reopened = open_kind(store_kind)
    assert make(reopened, "d").client_id == 4


def test_deleted_client_is_not_found_even_as_revoked(store):
    """Spec W2: deleting must never leave a record reachable by any key."""
    client = make(store, "live-key", password="pw", allowed_types=["speak"])
    store.delete(client.client_id)
    assert store.get_by_access_key("revoked") is None
    assert store.get_by_access_key("live-key") is None
    assert all(c.api_key != "revoked" for c in store.list_clients())
    assert store.get(client.client_id) is None


def test_legacy_tombstone_never_matches(store):
    """A tombstone written by the upstream hub stays unreachable (spec W2)."""
    store.put(Client(client_id=5, api_key="revoked", allowed_types=["speak"]))
    assert store.get_by_access_key("revoked") is None
    assert store.get(5).is_revoked
    # Ids above the tombstone are used for new clients.
    assert make(store, "fresh").client_id == 6


def test_delete_unknown_id(store):
    with pytest.raises(ClientNotFoundError):
        store.delete(1)


def test_change_callbacks(store):
    seen = []
    unsubscribe = store.on_change(seen.append)
    client = make(store, "a", is_admin=True)
    store.update(client.client_id, name="x")
    store.update(client.client_id, is_admin=False)
    store.delete(client.client_id)
    assert [c.kind for c in seen] == [
        ChangeKind.CREATED,
        ChangeKind.UPDATED,
        ChangeKind.UPDATED,
        ChangeKind.DELETED,
    ]
    assert [c.revokes_access for c in seen] == [False, False, True, True]
    assert seen[1].before.name == ""
    assert seen[1].after.name == "x"
    unsubscribe()
    make(store, "b")
    assert len(seen) == 4


def test_no_callback_for_a_no_op_update(store):
    client = make(store, "a", name="n")
    seen = []
    store.on_change(seen.append)
    assert store.update(client.client_id, name="n") == client
    assert seen == []


def test_failing_callback_does_not_undo_or_block(store, caplog):
    seen = []

    def boom(change):
        raise RuntimeError("callback bug")

    store.on_change(boom)
    store.on_change(seen.append)
    client = make(store, "a")
    assert store.get(client.client_id) == client
    assert len(seen) == 1
    assert "callback failed" in caplog.text


def test_password_change_revokes_access(store):
    client = make(store, "a", password="one")
    seen = []
    store.on_change(seen.append)
    store.update(client.client_id, password="two")
    assert seen[0].revokes_access


def test_changes_from_another_store_object_are_visible(store_kind, open_kind):
    first = open_kind(store_kind)
    second = open_kind(store_kind)
    client = make(first, "a")
    assert second.get_by_access_key("a") == client
    first.update(client.client_id, allowed_types=["speak"])
    assert second.get_by_access_key("a").allowed_types == ("speak",)
    first.delete(client.client_id)
    assert second.get_by_access_key("a") is None


def test_concurrent_creates_get_distinct_ids(store_kind, open_kind):
    stores = [open_kind(store_kind) for _ in range(3)]
    errors = []

    def worker(n, s):
        try:
            for i in range(5):
                make(s, f"w{n}-{i}")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n, s)) for n, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    ids = [c.client_id for c in stores[0].list_clients()]
    assert sorted(ids) == list(range(1, 16))


def test_put_rejects_key_clash_with_other_id(store):
    make(store, "a")
    with pytest.raises(DuplicateAccessKeyError):
        store.put(Client(client_id=9, api_key="a"))


def test_metadata_round_trips_through_storage(store, store_kind, open_kind):
    client = make(store, "a", metadata={"skill_blacklist": ["s"], "nested": {"x": [1, None]}})
    again = open_kind(store_kind).get(client.client_id)
    assert again.skill_blacklist == ("s",)
    assert again.metadata["nested"] == {"x": [1, None]}


def test_touch_records_last_seen_without_callbacks(store):
    client = make(store, "a")
    seen = []
    store.on_change(seen.append)
    store.touch(client.client_id, 1700000000.25)
    store.touch(99, 1.0)
    assert store.get(client.client_id).last_seen == 1700000000.25
    assert seen == []
