from __future__ import annotations

import json

import pytest
from hivemind_hub import Client, InvalidClientError


def legacy_record(**over):
    record = {
        "client_id": 3,
        "api_key": "k" * 32,
        "name": "kitchen",
        "description": "",
        "is_admin": False,
        "last_seen": 12.5,
        "allowed_types": ["recognizer_loop:utterance"],
        "intent_blacklist": ["intent.a"],
        "skill_blacklist": ["skill-b"],
        "message_blacklist": ["speak"],
        "crypto_key": None,
        "password": "pw",
        "can_broadcast": True,
        "can_escalate": False,
        "can_propagate": True,
    }
    record.update(over)
    return record


def test_legacy_blacklists_move_into_metadata():
    client = Client.from_dict(legacy_record())
    assert client.intent_blacklist == ("intent.a",)
    assert client.skill_blacklist == ("skill-b",)
    assert client.metadata["message_blacklist"] == ["speak"]
    assert "intent_blacklist" not in client.to_dict()
    assert client.to_dict()["metadata"]["skill_blacklist"] == ["skill-b"]


def test_explicit_metadata_wins_over_legacy_field():
    client = Client.from_dict(legacy_record(metadata={"skill_blacklist": ["kept"]}))
    assert client.skill_blacklist == ("kept",)


def test_unknown_top_level_keys_fold_into_metadata():
    client = Client.from_dict(legacy_record(account_id="acct_1", tier="pro"))
    assert client.metadata["account_id"] == "acct_1"
    assert client.metadata["tier"] == "pro"


def test_empty_legacy_lists_do_not_pollute_metadata():
    client = Client.from_dict(
        legacy_record(intent_blacklist=[], skill_blacklist="[]", message_blacklist=None)
    )
    assert dict(client.metadata) == {}


def test_integer_booleans_from_old_sqlite_rows_load():
    client = Client.from_dict(legacy_record(is_admin=1, can_escalate=0))
    assert client.is_admin is True
    assert client.can_escalate is False


def test_constructor_is_strict_about_booleans():
    with pytest.raises(InvalidClientError, match="is_admin"):
        Client(client_id=1, api_key="k", is_admin=1)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("client_id", "1"),
        ("client_id", True),
        ("api_key", None),
        ("allowed_types", "speak"),
        ("allowed_types", ["ok", 3]),
        ("last_seen", float("nan")),
        ("metadata", ["not", "a", "dict"]),
        ("password", 5),
    ],
)
def test_invalid_fields_are_rejected(field, value):
    kwargs = {"client_id": 1, "api_key": "k", field: value}
    with pytest.raises(InvalidClientError, match=field):
        Client(**kwargs)


def test_missing_required_fields():
    with pytest.raises(InvalidClientError, match="required"):
        Client.from_dict({"name": "x"})


def test_round_trip_through_json():
    client = Client.from_dict(legacy_record(metadata={"nested": {"a": [1, 2]}}))
    again = Client.from_json(client.to_json())
    assert again == client
    assert json.loads(client.to_json()) == client.to_dict()


def test_allowed_types_default_is_empty_and_deduplicated():
    assert Client(client_id=1, api_key="k").allowed_types == ()
    assert Client(client_id=1, api_key="k", allowed_types=["a", "a", "b"]).allowed_types == (
        "a",
        "b",
    )


def test_repr_hides_secrets():
    client = Client(client_id=1, api_key="SECRETKEY", password="SECRETPW", crypto_key="C" * 16)
    text = repr(client)
    assert "SECRETKEY" not in text
    assert "SECRETPW" not in text
    assert "C" * 16 not in text
    assert "client_id=1" in text


def test_metadata_is_read_only_and_detached_from_input():
    source = {"a": 1}
    client = Client(client_id=1, api_key="k", metadata=source)
    source["a"] = 2
    assert client.metadata["a"] == 1
    with pytest.raises(TypeError):
        client.metadata["b"] = 3  # type: ignore[index]


def test_with_changes_validates_names_and_values():
    client = Client(client_id=1, api_key="k")
    assert client.with_changes(name="n").name == "n"
    with pytest.raises(InvalidClientError, match="unknown"):
        client.with_changes(nope=1)
    with pytest.raises(InvalidClientError, match="is_admin"):
        client.with_changes(is_admin="yes")


@pytest.mark.parametrize("key", ["revoked", ""])
def test_tombstones_are_recognised(key):
    assert Client(client_id=1, api_key=key).is_revoked
    assert not Client(client_id=1, api_key="live").is_revoked
