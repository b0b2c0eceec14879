"""Sealed room requests and replies, the seal-key statement, and the peer hub store."""

from __future__ import annotations

import dataclasses
import secrets

import pytest
from hivemind_rooms.attestation import RunSigner, ServiceAttestation
from hivemind_rooms.attestation._types import QuoteClaims
from hivemind_rooms.canonical import b64_decode, b64_encode
from hivemind_rooms.hive import (
    ROOM_TYPES,
    PeerStore,
    SealError,
    SealKey,
    open_reply,
    seal_request,
    verify_seal_statement,
)

COMPOSE = "ab" * 32


def _service(signer: RunSigner, compose: str = COMPOSE) -> ServiceAttestation:
    claims = QuoteClaims("dev", "Dev", "", ("", "", "", ""), "", bytes(64), False)
    return ServiceAttestation(
        label="unattested",
        platform="dev",
        compose_hash=compose,
        app_id="",
        app_version="1",
        run_signer_pubkey_b64=signer.public_key_b64(),
        tls_spki_sha256=None,
        claims=claims,
    )


def _flip(text: str, index: int) -> str:
    raw = bytearray(b64_decode(text))
    raw[index % len(raw)] ^= 0x01
    return b64_encode(bytes(raw))


def test_statement_verifies_only_against_the_attested_signer_and_compose() -> None:
    signer, other = RunSigner(secrets.token_bytes(32)), RunSigner(secrets.token_bytes(32))
    key = SealKey(secrets.token_bytes(32))
    statement = key.statement(signer, compose_hash=COMPOSE)
    assert b64_encode(verify_seal_statement(statement, _service(signer))) == key.public_key_b64()
    with pytest.raises(SealError):
        verify_seal_statement(statement, _service(other))
    with pytest.raises(SealError):
        verify_seal_statement(statement, _service(signer, "cd" * 32))
    forged = {**statement, "body": {**statement["body"], "seal_pubkey_b64": b64_encode(bytes(32))}}
    with pytest.raises(SealError):
        verify_seal_statement(forged, _service(signer))
    with pytest.raises(SealError):
        verify_seal_statement({**statement, "extra": 1}, _service(signer))


def test_request_and_reply_round_trip_and_bind_room_op_and_nonce() -> None:
    key = SealKey(secrets.token_bytes(32))
    public = b64_decode(key.public_key_b64())
    nonce = secrets.token_hex(16)
    body = {"token": "hmq_secret", "query": "the question"}
    envelope, reply_key = seal_request(public, op="ask", room_id="room_a", nonce=nonce, body=body)
    assert "the question" not in str(envelope)
    assert "hmq_secret" not in str(envelope)
    opened = key.open_request(envelope, op="ask")
    assert (opened.op, opened.room_id, opened.nonce, opened.body) == ("ask", "room_a", nonce, body)
    sealed = opened.seal_reply("answer", {"output": "the answer"})
    assert open_reply(reply_key, sealed, op="ask", room_id="room_a", nonce=nonce) == (
        "answer",
        {"output": "the answer"},
    )
    for bad in (
        {**envelope, "room_id": "room_b"},
        {**envelope, "nonce": secrets.token_hex(16)},
        {**envelope, "sealed_b64": _flip(envelope["sealed_b64"], 40)},
    ):
        with pytest.raises(SealError):
            key.open_request(bad, op="ask")
    with pytest.raises(SealError):
        key.open_request(envelope, op="inspect")
    with pytest.raises(SealError):
        open_reply(reply_key, _flip(sealed, 50), op="ask", room_id="room_a", nonce=nonce)
    with pytest.raises(SealError):
        open_reply(reply_key, sealed, op="ask", room_id="room_a", nonce=secrets.token_hex(16))
    _, stranger = seal_request(public, op="ask", room_id="room_a", nonce=nonce, body=body)
    with pytest.raises(SealError):  # another request's reply key cannot open it
        open_reply(stranger, sealed, op="ask", room_id="room_a", nonce=nonce)


def test_seal_key_is_deterministic_per_provider_path() -> None:
    class Provider:
        kind = "dev"

        def derive_key(self, path: str) -> bytes:
            import hashlib

            return hashlib.sha256(path.encode()).digest()

    a = SealKey.from_provider(Provider(), compose_hash=COMPOSE)  # type: ignore[arg-type]
    b = SealKey.from_provider(Provider(), compose_hash=COMPOSE)  # type: ignore[arg-type]
    c = SealKey.from_provider(Provider(), compose_hash="cd" * 32)  # type: ignore[arg-type]
    assert a.public_key_b64() == b.public_key_b64() != c.public_key_b64()
    assert "private" not in repr(a).lower() or a.public_key_b64() in repr(a)


def test_peer_store_grants_and_revocation(tmp_path) -> None:
    store = PeerStore(tmp_path)
    peer = store.add("hub-a", allowed_types=ROOM_TYPES[:1])
    assert (tmp_path / "hive-peers.db").stat().st_mode & 0o077 == 0
    assert store.by_access_key(peer.access_key) == peer
    assert store.by_access_key(peer.access_key + "x") is None
    assert peer.password not in repr(peer)
    assert peer.access_key not in repr(peer)
    with pytest.raises(ValueError):
        store.add("hub-a")
    with pytest.raises(ValueError):
        store.add("hub-b", allowed_types=("hivemind.room.other",))
    assert [p.name for p in store.list()] == ["hub-a"]
    assert store.remove("hub-a") is True
    assert store.by_access_key(peer.access_key) is None
    store.close()
    assert dataclasses.is_dataclass(peer)
