"""INTERCOM integrity in the routing core (spec W17), with real RSA keys.

The router is given the real ``RsaIntercom``; envelopes are made with real
keys (``seal``, or by hand for the packed hybrid shape later released clients
send). Nothing here is mocked: a counting subclass only observes calls.
"""

from __future__ import annotations

import base64
import json
import logging
import os

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hivemind_hub import Client
from hivemind_hub.intercom import RsaIntercom, seal
from hivemind_hub.policy import build_policy_chain
from hivemind_hub.routing import (
    MAX_CIPHERTEXT_BYTES,
    Disconnect,
    EmitToAgent,
    PeerState,
    Router,
    SendToPeer,
    SendUpstream,
    SharedBus,
)
from hivemind_hub.routing._intercom import decode_inner, parse_envelope
from hivemind_proto import CloseCode, HiveMessage, MessageType, bus_message

NODE = "hub-intercom"
A = "ua::1::alpha::s1"
B = "ua::2::beta::s2"
C = "ua::3::gamma::s3"
UTT = "recognizer_loop:utterance"


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture(scope="module")
def keys() -> dict[str, rsa.RSAPrivateKey]:
    return {name: _key() for name in ("hub", "a", "b", "c")}


class CountingIntercom(RsaIntercom):
    """The real crypto, counting how often it is asked to work."""

    def __init__(self, key: rsa.RSAPrivateKey | None) -> None:
        super().__init__(key)
        self.verifies = 0
        self.opens = 0

    def verify(self, pubkey_pem, data, signature) -> bool:
        self.verifies += 1
        return super().verify(pubkey_pem, data, signature)

    def open(self, sealed):
        self.opens += 1
        return super().open(sealed)


def client(cid: int = 1, **kw) -> Client:
    fields = {"allowed_types": (UTT,), "api_key": f"key{cid}"} | kw
    return Client(client_id=cid, **fields)


def router(keys, *, a_pin: str | None = "a", upstream: bool = False, crypto: bool = True):
    r = Router(
        node_id=NODE,
        public_key=pem(keys["hub"]),
        site_id="home",
        chain=build_policy_chain(()),
        intercom=CountingIntercom(keys["hub"]) if crypto else None,
    )
    r.register(
        PeerState(A, 1, {"session_id": "s1"}, "kitchen", pem(keys[a_pin]) if a_pin else None)
    )
    r.register(PeerState(B, 2, {"session_id": "s2"}, "office", pem(keys["b"])))
    r.register(PeerState(C, 3, {"session_id": "s3"}, "attic", pem(keys["c"])))
    if upstream:
        r.set_upstream("upstream::parent")
    return r


def inner_bus(msg_type: str = UTT, session: str = "s1") -> bytes:
    """A compact inner BUS message (it must fit one RSA-OAEP block for the legacy shape)."""
    payload = bus_message(
        msg_type, {"utterances": ["open sesame"]}, {"session": {"session_id": session}}
    )
    return json.dumps({"msg_type": "bus", "payload": payload}).encode()


def intercom(payload: dict, target: str | None) -> HiveMessage:
    return HiveMessage(MessageType.INTERCOM, payload, target_pubkey=target)


def sends(actions, kind=SendToPeer):
    return [a for a in actions if isinstance(a, kind)]


# -- relaying --------------------------------------------------------------------------


def test_signed_intercom_relayed_only_to_the_key_holder(keys) -> None:
    r = router(keys)
    payload = seal(pem(keys["b"]), b'{"type": "hello.b"}', keys["a"])
    out = r.from_peer(A, intercom(payload, pem(keys["b"])), client(), 0.0)
    [send] = sends(out)
    assert send.peer == B
    assert send.message.payload == payload  # relayed unchanged, end to end
    assert send.message.route[-1].source == NODE
    assert not r.intercom_drops


def test_hybrid_intercom_relayed_too(keys) -> None:
    r = router(keys)
    payload = seal(pem(keys["b"]), b"x" * 5000, keys["a"], hybrid=True)
    out = r.from_peer(A, intercom(payload, pem(keys["b"])), client(), 0.0)
    assert [s.peer for s in sends(out)] == [B]


def test_forged_signature_dropped(keys) -> None:
    r = router(keys)
    payload = seal(pem(keys["b"]), b'{"type": "x"}', keys["a"])
    payload["signature"] = base64.b64encode(os.urandom(256)).decode()
    assert r.from_peer(A, intercom(payload, pem(keys["b"])), client(), 0.0) == []
    assert r.intercom_drops == {"bad_signature": 1}


def test_signature_by_another_key_dropped(keys) -> None:
    # C signs, but the connection sending it pinned A's key.
    r = router(keys)
    payload = seal(pem(keys["b"]), b'{"type": "x"}', keys["c"])
    assert r.from_peer(A, intercom(payload, pem(keys["b"])), client(), 0.0) == []
    assert r.intercom_drops == {"bad_signature": 1}


def test_tampered_ciphertext_dropped(keys) -> None:
    r = router(keys)
    payload = seal(pem(keys["b"]), b'{"type": "x"}', keys["a"])
    raw = bytearray(base64.b64decode(payload["ciphertext"]))
    raw[10] ^= 1
    payload["ciphertext"] = base64.b64encode(bytes(raw)).decode()
    assert r.from_peer(A, intercom(payload, pem(keys["b"])), client(), 0.0) == []
    assert r.intercom_drops == {"bad_signature": 1}


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"msg_type": "bus", "payload": {"type": UTT}}, "plaintext"),
        ({"ciphertext": "AAAA"}, "plaintext"),
        ({"signature": "AAAA"}, "plaintext"),
        ({"ciphertext": "not base64!", "signature": "AAAA"}, "malformed"),
        ({"ciphertext": "AAAA", "signature": 17}, "malformed"),
        ({"ciphertext": "", "signature": "AAAA"}, "malformed"),
        ({"ciphertext": "AAAA", "signature": "AAAA", "encrypted_key": "AAAA"}, "malformed"),
    ],
)
def test_plaintext_and_malformed_dropped(keys, payload, reason) -> None:
    r = router(keys)
    assert r.from_peer(A, intercom(payload, pem(keys["b"])), client(), 0.0) == []
    assert r.intercom_drops == {reason: 1}
    assert r.intercom.verifies == 0


def test_sender_without_pinned_key_dropped(keys) -> None:
    r = router(keys, a_pin=None)
    payload = seal(pem(keys["b"]), b'{"type": "x"}', keys["a"])
    assert r.from_peer(A, intercom(payload, pem(keys["b"])), client(), 0.0) == []
    assert r.intercom_drops == {"no_pin": 1}


def test_without_crypto_every_intercom_dropped(keys) -> None:
    r = router(keys, crypto=False)
    payload = seal(pem(keys["b"]), b'{"type": "x"}', keys["a"])
    assert r.from_peer(A, intercom(payload, pem(keys["b"])), client(), 0.0) == []
    assert r.intercom_drops == {"no_crypto": 1}


def test_oversize_refused_before_any_crypto(keys) -> None:
    r = router(keys)
    big = base64.b64encode(b"\0" * (MAX_CIPHERTEXT_BYTES + 1)).decode()
    payload = {"ciphertext": big, "signature": base64.b64encode(b"s" * 256).decode()}
    assert r.from_peer(A, intercom(payload, pem(keys["b"])), client(), 0.0) == []
    assert r.intercom_drops == {"oversize": 1}
    assert r.intercom.verifies == 0
    # The bound itself still passes to the signature check.
    edge = dict(payload, ciphertext=base64.b64encode(b"\0" * MAX_CIPHERTEXT_BYTES).decode())
    assert r.from_peer(A, intercom(edge, pem(keys["b"])), client(), 0.0) == []
    assert r.intercom.verifies == 1
    assert r.intercom_drops["bad_signature"] == 1


def test_drop_log_names_reason_not_payload(keys, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="hivemind_hub.routing")
    r = router(keys)
    payload = seal(pem(keys["b"]), b'{"type": "x"}', keys["c"])
    r.from_peer(A, intercom(payload, pem(keys["b"])), client(), 0.0)
    assert "bad_signature" in caplog.text
    assert payload["ciphertext"][:40] not in caplog.text
    assert payload["signature"][:40] not in caplog.text


def test_intercom_from_upstream_dropped(keys) -> None:
    r = router(keys, upstream=True)
    payload = seal(pem(keys["b"]), b'{"type": "x"}', keys["a"])
    assert r.from_upstream(intercom(payload, pem(keys["b"])), 0.0) == []
    wrapped = HiveMessage(MessageType.BROADCAST, intercom(payload, pem(keys["b"])))
    assert r.from_upstream(wrapped, 0.0) == []
    assert r.intercom_drops == {"upstream": 2}


# -- INTERCOM inside transport wrappers -------------------------------------------------


def test_wrapped_unsigned_intercom_not_forwarded(keys) -> None:
    r = router(keys, upstream=True)
    payload = seal(pem(keys["b"]), b'{"type": "x"}', keys["c"])
    msg = HiveMessage(MessageType.PROPAGATE, intercom(payload, pem(keys["b"])))
    assert r.from_peer(A, msg, client(can_propagate=True), 0.0) == []
    assert r.intercom_drops == {"bad_signature": 1}


def test_wrapped_signed_intercom_forwarded(keys) -> None:
    r = router(keys, upstream=True)
    payload = seal(pem(keys["b"]), b'{"type": "x"}', keys["a"])
    msg = HiveMessage(MessageType.ESCALATE, intercom(payload, pem(keys["b"])))
    [up] = sends(r.from_peer(A, msg, client(can_escalate=True), 0.0), SendUpstream)
    assert up.message.inner.payload == payload


def test_wrapped_intercom_for_the_hub_opened_not_forwarded(keys) -> None:
    r = router(keys, upstream=True)
    payload = seal(pem(keys["hub"]), inner_bus(), keys["a"])
    msg = HiveMessage(MessageType.PROPAGATE, intercom(payload, pem(keys["hub"])))
    out = r.from_peer(A, msg, client(can_propagate=True), 0.0)
    assert not sends(out)
    assert not sends(out, SendUpstream)
    [emit] = sends(out, EmitToAgent)
    assert emit.message["type"] == UTT


# -- addressed to the hub ------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["legacy", "hybrid"])
@pytest.mark.parametrize("addressed", [True, False])
def test_bus_for_the_hub_goes_through_the_policy_chain(keys, shape, addressed) -> None:
    r = router(keys)
    payload = seal(pem(keys["hub"]), inner_bus(), keys["a"], hybrid=shape == "hybrid")
    target = pem(keys["hub"]) if addressed else None
    out = r.from_peer(A, intercom(payload, target), client(), 0.0)
    [emit] = sends(out, EmitToAgent)
    assert emit.peer == A
    assert emit.message["type"] == UTT
    assert emit.message["data"]["utterances"] == ["open sesame"]
    assert emit.message["context"]["peer"] == emit.message["context"]["source"] == A
    assert r.intercom.opens == 1


def test_bus_for_the_hub_denied_when_type_not_granted(keys) -> None:
    r = router(keys)
    payload = seal(pem(keys["hub"]), inner_bus("mycroft.volume.set"), keys["a"])
    out = r.from_peer(A, intercom(payload, pem(keys["hub"])), client(), 0.0)
    assert not sends(out, EmitToAgent)
    [reply] = sends(out)
    assert reply.peer == A
    assert reply.message.payload["type"] == "hive.policy.denied"
    assert reply.message.payload["data"]["denied_type"] == "mycroft.volume.set"
    assert reply.message.payload["data"]["code"] == "acl_disallowed_type"


def test_inner_type_is_honoured(keys) -> None:
    r = router(keys)
    shared = HiveMessage(MessageType.SHARED_BUS, bus_message("speak", {"utterance": "hi"}))
    payload = seal(pem(keys["hub"]), json.dumps(shared.to_dict()).encode(), keys["a"])
    out = r.from_peer(A, intercom(payload, pem(keys["hub"])), client(), 0.0)
    assert [type(a) for a in out] == [SharedBus]
    # An inner BROADCAST from a non-admin gets the same answer as a direct one.
    inner = HiveMessage(MessageType.BROADCAST, HiveMessage(MessageType.BUS, bus_message(UTT)))
    payload = seal(pem(keys["hub"]), json.dumps(inner.to_dict()).encode(), keys["a"], hybrid=True)
    [close] = r.from_peer(A, intercom(payload, pem(keys["hub"])), client(), 0.0)
    assert isinstance(close, Disconnect)
    assert close.code == CloseCode.POLICY_VIOLATION


def test_bare_agent_message_inside_becomes_bus(keys) -> None:
    # What the released client encrypts when given an OVOS Message.
    r = router(keys)
    bare = {"type": UTT, "data": {"utterances": ["hi"]}, "context": {}}
    payload = seal(pem(keys["hub"]), json.dumps(bare).encode(), keys["a"])
    [emit] = sends(r.from_peer(A, intercom(payload, None), client(), 0.0), EmitToAgent)
    assert emit.message["type"] == UTT


def test_packed_hybrid_from_later_clients_opens(keys) -> None:
    r = router(keys)
    aes_key, nonce = os.urandom(32), os.urandom(16)
    sealed = AESGCM(aes_key).encrypt(nonce, inner_bus(), None)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    wrapped = keys["hub"].public_key().encrypt(aes_key, oaep)
    blob = len(wrapped).to_bytes(2, "big") + wrapped + nonce + sealed[-16:] + sealed[:-16]
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    signature = keys["a"].sign(blob, pss, hashes.SHA256())
    payload = {
        "ciphertext": base64.b64encode(blob).decode(),
        "signature": base64.b64encode(signature).decode(),
    }
    [emit] = sends(r.from_peer(A, intercom(payload, None), client(), 0.0), EmitToAgent)
    assert emit.message["type"] == UTT


def test_signed_but_not_for_our_key_is_dropped(keys) -> None:
    # Untargeted, so meant for the hub, but encrypted to B: it does not open.
    r = router(keys)
    payload = seal(pem(keys["b"]), inner_bus(), keys["a"])
    assert r.from_peer(A, intercom(payload, None), client(), 0.0) == []
    assert r.intercom_drops == {"undecryptable": 1}


@pytest.mark.parametrize(
    "plaintext",
    [
        b"not json",
        b"\xff\xfe",
        b'{"msg_type": "nope", "payload": {}}',
        b"[1, 2]",
        b"[" * 20000 + b"]" * 20000,
    ],
)
def test_inner_that_is_not_a_message_dropped(keys, plaintext) -> None:
    r = router(keys)
    payload = seal(pem(keys["hub"]), plaintext, keys["a"], hybrid=True)
    assert r.from_peer(A, intercom(payload, None), client(), 0.0) == []
    assert r.intercom_drops == {"bad_inner": 1}


def test_nested_intercom_refused(keys) -> None:
    r = router(keys)
    deepest = seal(pem(keys["hub"]), inner_bus(), keys["a"])
    nested = HiveMessage(MessageType.PROPAGATE, intercom(deepest, pem(keys["hub"])))
    payload = seal(pem(keys["hub"]), json.dumps(nested.to_dict()).encode(), keys["a"], hybrid=True)
    assert r.from_peer(A, intercom(payload, None), client(can_propagate=True), 0.0) == []
    assert r.intercom_drops == {"bad_inner": 1}
    assert r.intercom.opens == 1


# -- the crypto module on its own ---------------------------------------------------------


def test_small_rsa_keys_are_not_used(keys) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    data = b"data"
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    crypto = RsaIntercom(keys["hub"])
    assert not crypto.verify(pem(small), data, small.sign(data, pss, hashes.SHA256()))
    assert crypto.verify(pem(keys["a"]), data, keys["a"].sign(data, pss, hashes.SHA256()))
    assert not crypto.verify("not a key", data, b"\0" * 256)
    huge = pem(keys["a"]) + " " * 5000  # parsed never, cached never
    assert not crypto.verify(huge, data, keys["a"].sign(data, pss, hashes.SHA256()))
    assert huge not in crypto._cache
    with pytest.raises(ValueError):
        RsaIntercom(small)


def test_legacy_envelope_limits_and_repr(keys) -> None:
    with pytest.raises(ValueError):
        seal(pem(keys["b"]), b"x" * 215, keys["a"], hybrid=False)
    assert "encrypted_key" not in seal(pem(keys["b"]), b"x" * 214, keys["a"])
    assert "encrypted_key" in seal(pem(keys["b"]), b"x" * 215, keys["a"])
    envelope = parse_envelope(seal(pem(keys["b"]), b"x", keys["a"]))
    assert "ciphertext=" not in repr(envelope)
    assert repr(RsaIntercom(keys["hub"])) == "RsaIntercom(can_open=True)"
    assert RsaIntercom.from_private_pem(b"").open(envelope) is None
    assert decode_inner(b'{"type": 3}') is None
