"""INTERCOM end to end with the released client (hivemind-bus-client 0.4.4) and our hub.

Two released satellites, each with its own RSA identity announced in HELLO,
talk to our hub on 127.0.0.1 (the agent is an in-process recorder). The
script ``interop/intercom_satellite.py`` shows what the released
``emit_intercom`` does (it cannot send: its payload holds ``bytes``, which its
JSON encoder refuses, and it never sets ``target_pubkey``), then sends
envelopes made with the client's own RSA primitives (PyCryptodome OAEP-SHA1
and PSS-SHA256 defaults), base64 as text. The hub must:

* open the one addressed to it and hand the inner utterance to the agent as
  that satellite's BUS message;
* answer an inner type the client is not granted with ``hive.policy.denied``;
* drop one signed by a key that is not the sender's HELLO key;
* relay one addressed to the other satellite, which opens it with its key.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import trio
import trio.lowlevel

from .hubkit import PASSWORD, UTT, running_hub, wait_for
from .test_e2e_interop import read_line, reference_peers, stop

pytestmark = [pytest.mark.interop, pytest.mark.slow]

SCRIPT = Path(__file__).parent / "interop" / "intercom_satellite.py"
SENDER_KEY = "ic00a1b2c3d4e5f60718293a4b5c6d7e"
RECEIVER_KEY = "ic11f2e3d4c5b6a79889706152433425"
SECRET = "intercom utterance kq42"
FORGED = "forged utterance zz99"
PEER_TEXT = "for your eyes only 7731"
FORBIDDEN = "mycroft.volume.set"


class RecordingAgent:
    """A real in-process agent that keeps what the hub hands it."""

    name = "recording"
    answers_queries = False

    def __init__(self) -> None:
        self.emitted: list[dict] = []

    def emit(self, message) -> bool:
        self.emitted.append(json.loads(json.dumps(message)))
        return True

    async def run(self, host, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await trio.sleep_forever()


async def test_released_client_intercom_through_our_hub(tmp_path, interop_python) -> None:
    py = interop_python
    agent = RecordingAgent()
    env_a = reference_peers.xdg_env(tmp_path / "sender")
    env_b = reference_peers.xdg_env(tmp_path / "receiver")
    stop_file = tmp_path / "stop"
    async with running_hub(tmp_path, agent=agent) as serving:
        hub = serving.hub
        hub.store.create(api_key=SENDER_KEY, name="a", password=PASSWORD, allowed_types=[UTT])
        hub.store.create(api_key=RECEIVER_KEY, name="b", password=PASSWORD, allowed_types=[UTT])
        base = {"port": serving.port, "password": PASSWORD}
        receiver = await trio.lowlevel.open_process(
            [
                py,
                str(SCRIPT),
                json.dumps(
                    {**base, "mode": "receive", "key": RECEIVER_KEY, "stop_file": str(stop_file)}
                ),
            ],
            env=env_b,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        try:
            ready = json.loads(await read_line(receiver))
            assert ready["ready"]
            assert ready["pubkey"].startswith("-----BEGIN PUBLIC KEY-----")
            await wait_for(lambda: len(hub.live) == 1, 20)
            request = {
                **base,
                "mode": "send",
                "key": SENDER_KEY,
                "msg_type": UTT,
                "utterance": SECRET,
                "forbidden_type": FORBIDDEN,
                "forged": FORGED,
                "peer_pubkey": ready["pubkey"],
                "hub_pubkey": hub.identity.public_pem,
                "peer_text": PEER_TEXT,
            }
            with trio.fail_after(90):
                done = await trio.run_process(
                    [py, str(SCRIPT), json.dumps(request)],
                    env=env_a,
                    capture_stdout=True,
                    capture_stderr=True,
                    check=False,
                )
            out = done.stdout.decode(errors="replace").splitlines()
            lines = [line for line in out if line.startswith("{")]
            assert lines, done.stderr.decode()[-2000:]
            sent = json.loads(lines[-1])
            stop_file.write_text("done")
            seen = json.loads(await read_line(receiver))
        finally:
            await stop(receiver)
        drops = dict(hub.router.intercom_drops)
    # The released emit_intercom cannot put its envelope on the wire at all.
    assert sent["emit_intercom"].startswith("TypeError"), sent
    assert "bytes" in sent["emit_intercom"]
    # The corrected envelope for the hub: opened, admitted, handed over as a BUS.
    utterances = [m for m in agent.emitted if m["type"] == UTT]
    assert [m["data"]["utterances"] for m in utterances] == [[SECRET]]
    assert utterances[0]["context"]["peer"].split("::")[1] == "1"  # the sender's client id
    # An inner type the client is not granted: denied, never handed over.
    assert sent["denied_ok"], sent
    assert sent["denied"]["data"]["denied_type"] == FORBIDDEN
    assert sent["denied"]["data"]["code"] == "acl_disallowed_type"
    assert not [m for m in agent.emitted if m["type"] == FORBIDDEN]
    # Signed by a key that is not the sender's HELLO key: dropped.
    assert FORGED not in json.dumps(agent.emitted)
    assert drops == {"bad_signature": 1}
    # Relayed to the other satellite, which opens it with its own key.
    # (The released client's own INTERCOM handler usually opens it first, into a
    # BUS HiveMessage, then dispatches on the outer type, so it goes no further.)
    [got] = seen["intercom_seen"]
    inner = got["inner"]["payload"] if got.get("opened_by_client") else got["inner"]
    assert inner["type"] == "peer.note"
    assert inner["data"] == {"text": PEER_TEXT}
