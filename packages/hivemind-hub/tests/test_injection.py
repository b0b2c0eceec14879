from __future__ import annotations

import copy

from hivemind_hub import prepare_injection

SESSION = {"session_id": "abc", "site_id": "kitchen", "pipeline": None, "lang": "en-US"}


def test_context_rewrite():
    message = {
        "type": "recognizer_loop:utterance",
        "data": {"utterances": ["hi"]},
        "context": {"source": "spoofed", "session": {"session_id": "abc", "site_id": "evil"}},
    }
    before = copy.deepcopy(message)
    out = prepare_injection(message, peer="sat:1::abc", session=SESSION)
    ctx = out["context"]
    assert ctx["session"] == {"session_id": "abc", "site_id": "kitchen", "lang": "en-US"}
    assert ctx["destination"] == "skills"
    assert ctx["peer"] == ctx["source"] == "sat:1::abc"
    assert message == before


def test_speak_goes_to_hub_audio():
    out = prepare_injection({"type": "speak", "data": {}}, peer="p", session=SESSION)
    assert out["context"]["destination"] == ["audio"]


def test_existing_destination_is_kept_and_blacklists_survive():
    message = {
        "type": "t",
        "context": {
            "destination": "HiveMind",
            "session": {"blacklisted_skills": ["s"], "blacklisted_intents": ["i"]},
        },
    }
    out = prepare_injection(message, peer="p", session={**SESSION, "blacklisted_skills": ["x"]})
    assert out["context"]["destination"] == "HiveMind"
    assert out["context"]["session"]["blacklisted_skills"] == ["x", "s"]
    assert out["context"]["session"]["blacklisted_intents"] == ["i"]
    assert out["data"] == {}
