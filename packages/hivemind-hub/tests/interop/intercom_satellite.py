"""Drive INTERCOM from the released hivemind-bus-client (0.4.x), for the end-to-end test.

Runs inside the interop virtualenv, never in the workspace environment.
Usage: python intercom_satellite.py '<json request>'; prints JSON lines.

The released client's own ``emit_intercom`` is tried first and what it does
is reported. Then envelopes are built with the client's own primitives
(``poorman_handshake`` RSA-OAEP and RSA-PSS, i.e. PyCryptodome defaults), the
only change being base64 *text* where the client puts base64 *bytes*, and sent
with the client's ``emit``.

Modes:
  send:    connect (with an RSA identity announced in HELLO), then, with the
           hub key ``hub_pubkey``:
           1. call ``emit_intercom`` with a short OVOS message for the hub;
           2. send a corrected envelope for the hub carrying ``utterance``;
           3. send one carrying ``forbidden_type`` and wait for the denial;
           4. send one signed by a key that is not ours, carrying ``forged``;
           5. if ``peer_pubkey`` is given, send a corrected envelope to it.
  receive: connect with an RSA identity, print ``{"ready": true, "pubkey": ...}``,
           then record every INTERCOM received until ``stop_file`` exists,
           opening each with the identity's private key.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time

import pybase64
from hivemind_bus_client import HiveMessageBusClient
from hivemind_bus_client.message import HiveMessage, HiveMessageType
from ovos_bus_client.message import Message
from ovos_utils.fakebus import FakeBus
from poorman_handshake.asymmetric.utils import (
    create_RSA_key,
    decrypt_RSA,
    encrypt_RSA,
    load_RSA_key,
    sign_RSA,
)

logging.disable(logging.CRITICAL)


def _connected(req: dict) -> HiveMessageBusClient:
    hive = HiveMessageBusClient(
        key=req["key"],
        password=req["password"],
        host="ws://127.0.0.1",
        port=req["port"],
        useragent="InteropIntercom",
        self_signed=False,
    )
    if not hive.identity.public_key:
        hive.identity.create_keys()  # the client's own RSA identity, sent in HELLO
    hive.connect(FakeBus())
    return hive


def _envelope(recipient_pem: str, plaintext: str, signer) -> dict:
    """The client's own primitives, with the base64 as text so JSON can carry it."""
    ciphertext = encrypt_RSA(recipient_pem, plaintext)
    signature = sign_RSA(signer, ciphertext)
    return {
        "ciphertext": pybase64.b64encode(ciphertext).decode("ascii"),
        "signature": pybase64.b64encode(signature).decode("ascii"),
    }


def _send(hive, recipient_pem: str, message: Message, signer) -> None:
    payload = _envelope(recipient_pem, message.serialize(), signer)
    hive.emit(HiveMessage(HiveMessageType.INTERCOM, payload, target_pubkey=recipient_pem))


def send(req: dict) -> dict:
    hive = _connected(req)
    # The client keeps the hub HELLO key only if HELLO beats its handler
    # registration (a race it usually loses), so the key is also given out of band.
    hub_pem = req["hub_pubkey"]
    own = load_RSA_key(hive.identity.private_key)
    got: dict = {"hub_pubkey_from_hello": hive.protocol.mpubkey == hub_pem}
    denied = threading.Event()

    def on_denied(m):
        got["denied"] = {"data": m.data}
        denied.set()

    hive.on_mycroft("hive.policy.denied", on_denied)
    # 1. The released API as it is.
    try:
        hive.emit_intercom(Message("released.api.probe", {}), hub_pem)
        got["emit_intercom"] = "sent"
    except Exception as exc:  # report what the released client does
        got["emit_intercom"] = f"{type(exc).__name__}: {exc}"
    # 2. A corrected envelope for the hub.
    utterance = Message(req["msg_type"], {"utterances": [req["utterance"]]})
    _send(hive, hub_pem, utterance, own)
    # 3. A type this client is not granted.
    _send(hive, hub_pem, Message(req["forbidden_type"], {}), own)
    got["denied_ok"] = denied.wait(20)
    # 4. Signed by someone else's key.
    _, other_secret = create_RSA_key()
    _send(hive, hub_pem, Message(req["msg_type"], {"utterances": [req["forged"]]}), other_secret)
    # 5. To another satellite.
    if req.get("peer_pubkey"):
        _send(hive, req["peer_pubkey"], Message("peer.note", {"text": req["peer_text"]}), own)
    time.sleep(1.0)
    return got


def receive(req: dict) -> dict:
    hive = _connected(req)
    own = load_RSA_key(hive.identity.private_key)
    seen: list = []

    def on_intercom(message):
        payload = message.payload
        if isinstance(payload, HiveMessage):  # the client's own handler opened it first
            seen.append({"opened_by_client": True, "inner": payload.as_dict})
            return
        try:
            inner = decrypt_RSA(own, pybase64.b64decode(payload["ciphertext"]))
            seen.append({"opened_by_client": False, "inner": json.loads(inner)})
        except Exception as exc:
            seen.append({"error": type(exc).__name__})

    hive.on(HiveMessageType.INTERCOM, on_intercom)
    print(json.dumps({"ready": True, "pubkey": hive.identity.public_key}), flush=True)
    deadline = time.monotonic() + req.get("seconds", 60)
    while time.monotonic() < deadline and not os.path.exists(req["stop_file"]):
        time.sleep(0.05)
    time.sleep(0.5)
    return {"intercom_seen": seen}


def main() -> None:
    req = json.loads(sys.argv[1])
    result = {"send": send, "receive": receive}[req["mode"]](req)
    print(json.dumps(result), flush=True)
    os._exit(0)


if __name__ == "__main__":
    main()
