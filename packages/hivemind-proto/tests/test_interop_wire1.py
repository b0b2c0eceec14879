"""WIRE-1 against the released hivemind-bus-client 0.4.x serializer.

One subprocess under ``$HIVEMIND_INTEROP_PYTHON`` runs
``interop/bus_client_wire1.py`` over a batch of cases:

(a) frames the released encoder builds decode here to the expected message;
(b) frames ``Compression.ALWAYS`` builds decode there to the same content (and
    for ASCII content are byte-identical to the released encoder's frames);
(c) the released decoder's C-bit bug: it inflates every frame, so our
    ``Compression.NEVER`` (and a short ``AUTO``) frame fails there. That is
    why ``ALWAYS`` is the default.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hivemind_proto._envelope import HiveMessage, RouteHop, bus_message
from hivemind_proto._errors import CodecError
from hivemind_proto._types import WRAPPER_TYPES, BinaryType, MessageType
from hivemind_proto._wire1 import Compression, decode_wire1, encode_wire1

pytestmark = pytest.mark.interop

DRIVER = Path(__file__).parent / "interop" / "bus_client_wire1.py"

_UTTERANCE = bus_message("recognizer_loop:utterance", {"utterances": ["hello"]}, {"lang": "en"})
_INNER_BUS = HiveMessage(
    MessageType.BUS,
    bus_message("speak", {"utterance": "red alert"}),
    route=(RouteHop("sat-1", ("hub",)),),
    target_site_id="kitchen",
)


def _messages() -> dict[str, HiveMessage]:
    return {
        "bus": HiveMessage(MessageType.BUS, _UTTERANCE),
        "bus_meta": HiveMessage(MessageType.BUS, _UTTERANCE, metadata={"a": 1, "b": [True, None]}),
        "bus_big": HiveMessage(
            MessageType.BUS, bus_message("speak", {"utterance": "the quick fox " * 700})
        ),
        "shared_bus": HiveMessage(MessageType.SHARED_BUS, bus_message("speak", {"x": 1.5})),
        "hello": HiveMessage(MessageType.HELLO, {"pubkey": "abc", "peer": "p"}),
        "shake": HiveMessage(MessageType.HANDSHAKE, {"binarize": True, "envelope": "xyz"}),
        "ping": HiveMessage(MessageType.PING, {"flood_id": "f1", "peer": "p", "timestamp": 1}),
        "rendezvous": HiveMessage(MessageType.RENDEZVOUS, {"cmd": "x"}),
        "broadcast": HiveMessage(MessageType.BROADCAST, _INNER_BUS),
        "propagate_escalate": HiveMessage(
            MessageType.PROPAGATE,
            HiveMessage(MessageType.ESCALATE, _INNER_BUS, metadata={"m": "x"}),
        ),
        "escalate_intercom": HiveMessage(
            MessageType.ESCALATE,
            HiveMessage(
                MessageType.INTERCOM,
                {"ciphertext": "00ff", "signature": "aa"},
                target_pubkey="-----BEGIN PUBLIC KEY-----",
            ),
        ),
        "query": HiveMessage(MessageType.QUERY, _INNER_BUS),
        "cascade": HiveMessage(MessageType.CASCADE, _INNER_BUS),
        "unicode": HiveMessage(
            MessageType.BUS,
            bus_message("speak", {"utterance": "héllo wörld ✓ 🐝"}),
            metadata={"lang": "pt-PT", "name": "joão"},
        ),
        **{
            f"bin_{kind.name.lower()}": HiveMessage(
                MessageType.BINARY,
                bytes((i * 37 + kind) % 256 for i in range(97)),
                metadata={"sample_rate": 16000, "sample_width": 2} if kind else {},
                bin_type=kind,
            )
            for kind in BinaryType
        },
        "bin_empty": HiveMessage(MessageType.BINARY, b"", bin_type=BinaryType.FILE),
    }


def _is_ascii(message: HiveMessage) -> bool:
    if message.msg_type is MessageType.BINARY:
        return json.dumps(dict(message.metadata)).isascii()
    return json.dumps(message.to_dict(), ensure_ascii=False).isascii()


def _representable(message: HiveMessage) -> HiveMessage:
    route = message.inner.route if message.msg_type in WRAPPER_TYPES else ()
    return HiveMessage(
        message.msg_type,
        message.payload,
        metadata=message.metadata,
        route=route,
        bin_type=message.bin_type,
    )


def _case(case_id: str, message: HiveMessage, compressed: bool | None, versioned: bool) -> dict:
    case: dict[str, Any] = {
        "id": case_id,
        "msg_type": message.msg_type.value,
        "metadata": dict(message.metadata),
        "bin_type": int(message.bin_type),
        "compressed": compressed,
        "versioned": versioned,
    }
    if message.msg_type is MessageType.BINARY:
        case["payload_hex"] = bytes(message.payload).hex()
    elif isinstance(message.payload, HiveMessage):
        case["payload"] = message.payload.to_dict()
    else:
        case["payload"] = dict(message.payload)
    return case


def _run_driver(python: str, request: dict, tmp_path: Path) -> dict:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }
    proc = subprocess.run(
        [python, str(DRIVER)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout)


def _json_roundtrip(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _expected_view(message: HiveMessage) -> dict:
    """What the released decoder should report for a frame of ``message``."""
    view: dict[str, Any] = {
        "ok": True,
        "msg_type": message.msg_type.value,
        "metadata": _json_roundtrip(dict(message.metadata)),
        "bin_type": int(message.bin_type),
    }
    if message.msg_type is MessageType.BINARY:
        view["payload_hex"] = bytes(message.payload).hex()
    elif isinstance(message.payload, HiveMessage):
        view["payload"] = _json_roundtrip(message.payload.to_dict())
    else:
        view["payload"] = _json_roundtrip(dict(message.payload))
    return view


@pytest.fixture(scope="module")
def interop(tmp_path_factory: pytest.TempPathFactory, interop_python: str) -> dict:
    messages = _messages()
    legacy_only = {
        "thirdparty": HiveMessage(MessageType.THIRDPRTY, {"anything": [1, 2]}),
        # The released encoder relabels INTERCOM as code 11 (THIRDPRTY).
        "intercom": HiveMessage(MessageType.INTERCOM, {"ciphertext": "00", "signature": "11"}),
    }
    encode = []
    for name, message in {**messages, **legacy_only}.items():
        for compressed in (True, False, None):
            for versioned in (False, True):
                case_id = f"{name}/c={compressed}/v={versioned}"
                encode.append(_case(case_id, message, compressed, versioned))
    ours: dict[str, bytes] = {}
    for name, message in messages.items():
        ours[f"{name}/always"] = encode_wire1(message, compression=Compression.ALWAYS)
        ours[f"{name}/always/v"] = encode_wire1(
            message, compression=Compression.ALWAYS, versioned=True
        )
        ours[f"{name}/never"] = encode_wire1(message, compression=Compression.NEVER)
    ours["hello/auto"] = encode_wire1(messages["hello"], compression=Compression.AUTO)
    decode = [{"id": case_id, "hex": frame.hex()} for case_id, frame in ours.items()]
    reply = _run_driver(
        interop_python, {"encode": encode, "decode": decode}, tmp_path_factory.mktemp("interop")
    )
    return {"messages": messages, "ours": ours, **reply}


def test_released_frames_decode_to_the_expected_message(interop):
    checked = 0
    for name, message in interop["messages"].items():
        for compressed in (True, False, None):
            for versioned in (False, True):
                frame = bytes.fromhex(interop["encoded"][f"{name}/c={compressed}/v={versioned}"])
                assert decode_wire1(frame) == _representable(message), (name, compressed)
                checked += 1
    assert checked == 6 * len(interop["messages"])


def test_released_compression_flag_is_what_we_read(interop):
    # C=True and C=False frames from the released encoder differ, and both decode.
    plain = bytes.fromhex(interop["encoded"]["bus/c=False/v=False"])
    packed = bytes.fromhex(interop["encoded"]["bus/c=True/v=False"])
    assert plain != packed
    assert plain[0] & 1 == 0
    assert packed[0] & 1 == 1


def test_released_code_11_needs_opt_in(interop):
    for name in ("thirdparty", "intercom"):
        frame = bytes.fromhex(interop["encoded"][f"{name}/c=True/v=False"])
        with pytest.raises(CodecError):
            decode_wire1(frame)
        decoded = decode_wire1(frame, allow_legacy_thirdparty=True)
        # An INTERCOM from the released encoder arrives relabelled: the legacy bug.
        assert decoded.msg_type is MessageType.THIRDPRTY
    assert decode_wire1(
        bytes.fromhex(interop["encoded"]["thirdparty/c=False/v=True"]),
        allow_legacy_thirdparty=True,
    ) == HiveMessage(MessageType.THIRDPRTY, {"anything": [1, 2]})


def test_our_compressed_frames_decode_in_the_released_client(interop):
    for name, message in interop["messages"].items():
        expected = _expected_view(message)
        if expected.get("payload_hex") == "":
            # The released HiveMessage stores ``payload or {}``: an empty
            # BINARY payload comes out as an empty dict there.
            del expected["payload_hex"]
            expected["payload"] = {}
        for suffix in ("always", "always/v"):
            assert interop["decoded"][f"{name}/{suffix}"] == expected, name


def test_ascii_frames_are_byte_identical_to_the_released_encoder(interop):
    identical = 0
    for name, message in interop["messages"].items():
        if not _is_ascii(message):
            continue
        for ours, theirs in (
            ("always", "c=True/v=False"),
            ("always/v", "c=True/v=True"),
            ("never", "c=False/v=False"),
        ):
            assert (
                interop["ours"][f"{name}/{ours}"].hex() == interop["encoded"][f"{name}/{theirs}"]
            ), (name, ours)
            identical += 1
    assert identical >= 3 * (len(interop["messages"]) - 1)


def test_released_auto_mode_matches_ours(interop):
    for name, message in interop["messages"].items():
        if _is_ascii(message):
            theirs = interop["encoded"][f"{name}/c=None/v=False"]
            assert encode_wire1(message, compression=Compression.AUTO).hex() == theirs, name


def test_released_decoder_fails_on_uncompressed_frames(interop):
    for name in interop["messages"]:
        result = interop["decoded"][f"{name}/never"]
        assert result["ok"] is False, name
        assert "zlib" in result["error"] or "header" in result["error"], result
    # A short AUTO frame is the uncompressed one, so it fails there too.
    assert interop["ours"]["hello/auto"] == interop["ours"]["hello/never"]
    assert interop["decoded"]["hello/auto"]["ok"] is False
    # ... while our decoder reads all of them.
    for name, message in interop["messages"].items():
        assert decode_wire1(interop["ours"][f"{name}/never"]) == _representable(message)
