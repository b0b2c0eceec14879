from __future__ import annotations

import copy
import dataclasses
import hashlib

import pytest
from hivemind_rooms.attestation import (
    AgentPin,
    DevProvider,
    RunAttestationError,
    RunExpectation,
    RunSigner,
    build_run_body,
    sign_run_attestation,
    tape_hash,
    text_hash,
    verify_run_attestation,
)
from hivemind_rooms.attestation.run import artifact_entry, check_artifact
from hivemind_rooms.canonical import b64_encode

NOW = 1_700_000_000
SIGNER = RunSigner(bytes([5]) * 32)
AGENTS = {
    "scope": AgentPin("default-scope", "11" * 32),
    "query": AgentPin("0123456789ab", "22" * 32),
    "mediator": AgentPin("default-mediator", "33" * 32),
}
MODELS = {"scope": "m-scope", "query": "m-query", "mediator": "m-mediator"}
TAPE = tape_hash([{"request_hash": "x", "response": {"content": "hi", "p": 0.5}}])


def body(**overrides):
    args = {
        "run_id": "a1b2c3d4e5f6",
        "status": "completed",
        "timestamp": NOW - 10,
        "platform": "dev",
        "room_id": "room_0123456789ab",
        "manifest_hash": "44" * 32,
        "compose_hash": "55" * 32,
        "agents": AGENTS,
        "models": MODELS,
        "prompt": "How many?",
        "output": "Three.",
        "tape_hash": TAPE,
        "signer": SIGNER,
    }
    args.update(overrides)
    return build_run_body(**args)


EXPECT = RunExpectation(
    signer_pubkey_b64=SIGNER.public_key_b64(),
    room_id="room_0123456789ab",
    manifest_hash="44" * 32,
    compose_hash="55" * 32,
    platform="dev",
    agents=AGENTS,
    models=MODELS,
    prompt="How many?",
    output="Three.",
    now=NOW,
    run_id="a1b2c3d4e5f6",
    tape_hash=TAPE,
)


def test_round_trip():
    att = sign_run_attestation(body(), SIGNER)
    got = verify_run_attestation(att, expected=EXPECT)
    assert got["prompt_hash"] == text_hash("How many?")
    assert got["agents"]["mediator"] == {"agent_id": "default-mediator", "digest": "33" * 32}
    assert got["models"]["query"] == "m-query"
    assert got["error_hash"] == ""


def leaf_paths(obj, prefix=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from leaf_paths(v, (*prefix, k))
    else:
        yield prefix


def mutate(value):
    if isinstance(value, int):
        return value + 1
    return (value[:-1] + ("0" if value[-1:] != "0" else "1")) if value else "x"


PATHS = list(leaf_paths(body()))


@pytest.mark.parametrize("path", PATHS, ids=[".".join(p) for p in PATHS])
def test_every_field_is_covered_by_the_signature(path):
    """Spec 12.2 check 16: a tampered run attestation fails, whichever field changed."""
    att = sign_run_attestation(body(), SIGNER)
    target = att["body"]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = mutate(target[path[-1]])
    with pytest.raises(RunAttestationError) as info:
        verify_run_attestation(att, expected=EXPECT)
    assert info.value.field == ("schema" if path == ("schema",) else "signature")


# The signer key is checked by test_signer_key_must_be_the_attested_one, the timestamp
# (a window, not an exact value) by test_freshness.
RESIGNABLE = [p for p in PATHS if p[0] not in ("signer_pubkey_b64", "schema", "timestamp")]


@pytest.mark.parametrize("path", RESIGNABLE, ids=[".".join(p) for p in RESIGNABLE])
def test_every_field_is_checked_against_expectations(path):
    """A correctly signed body with any one different value is refused (spec 12.2 16, 17)."""
    tampered = copy.deepcopy(body())
    target = tampered
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = mutate(target[path[-1]])
    att = sign_run_attestation(tampered, SIGNER)
    with pytest.raises(RunAttestationError) as info:
        verify_run_attestation(att, expected=EXPECT)
    assert info.value.field == path[0]


def test_signer_key_must_be_the_attested_one():
    other = RunSigner(bytes([6]) * 32)
    att = sign_run_attestation(body(signer=other), other)
    with pytest.raises(RunAttestationError) as info:
        verify_run_attestation(att, expected=EXPECT)
    assert info.value.field == "signer"
    att["signer_pubkey_b64"] = SIGNER.public_key_b64()
    with pytest.raises(RunAttestationError):
        verify_run_attestation(att, expected=EXPECT)


@pytest.mark.parametrize(
    "att",
    [None, {}, {"body": {}, "signature_b64": "", "signer_pubkey_b64": ""}, "x"],
)
def test_missing_or_malformed_envelope(att):
    with pytest.raises(RunAttestationError) as info:
        verify_run_attestation(att, expected=EXPECT)
    assert info.value.field == "schema"


def test_bad_signature_encoding():
    att = sign_run_attestation(body(), SIGNER)
    att["signature_b64"] = "@@"
    with pytest.raises(RunAttestationError):
        verify_run_attestation(att, expected=EXPECT)
    att["signature_b64"] = b64_encode(bytes(64))
    with pytest.raises(RunAttestationError):
        verify_run_attestation(att, expected=EXPECT)


def test_freshness():
    stale = sign_run_attestation(body(timestamp=NOW - 25 * 3600), SIGNER)
    with pytest.raises(RunAttestationError) as info:
        verify_run_attestation(stale, expected=EXPECT)
    assert info.value.field == "timestamp"
    future = sign_run_attestation(body(timestamp=NOW + 3600), SIGNER)
    with pytest.raises(RunAttestationError):
        verify_run_attestation(future, expected=EXPECT)


def test_failed_run_and_unknown_tape():
    att = sign_run_attestation(body(status="failed", output="", error="boom"), SIGNER)
    exp = dataclasses.replace(EXPECT, status="failed", output="", error="boom", tape_hash=None)
    assert verify_run_attestation(att, expected=exp)["error_hash"] == text_hash("boom")
    with pytest.raises(RunAttestationError) as info:
        verify_run_attestation(att, expected=dataclasses.replace(exp, error="other"))
    assert info.value.field == "error_hash"


def test_builder_validation():
    with pytest.raises(ValueError):
        body(status="running")
    with pytest.raises(ValueError):
        body(agents={"other": AgentPin()})
    with pytest.raises(ValueError):
        body(tape_hash="nothex")
    with pytest.raises(ValueError):
        sign_run_attestation(body(), RunSigner(bytes([9]) * 32))


def test_signer_from_provider_depends_on_compose_and_hides_secret():
    dev = DevProvider(
        platform_seed=bytes(32), app_secret=bytes([1]) * 32, app_compose="{}", instance_id="00"
    )
    a = RunSigner.from_provider(dev, compose_hash="aa" * 32)
    assert a.public_key() == RunSigner.from_provider(dev, compose_hash="aa" * 32).public_key()
    assert a.public_key() != RunSigner.from_provider(dev, compose_hash="bb" * 32).public_key()
    assert "public_key_b64" in repr(a)
    assert (bytes([5]) * 32).hex() not in repr(SIGNER)


def test_tape_hash_is_order_sensitive_and_stable():
    t = [{"a": 1, "b": 0.25}, {"c": "é"}]
    assert tape_hash(t) == tape_hash(list(t))
    assert tape_hash(t) != tape_hash(list(reversed(t)))


# --- artifacts ------------------------------------------------------------------------

REPORT, DATA = b"# report\nthree cities\n", bytes(range(256)) * 3
ARTIFACTS = [artifact_entry("report.md", REPORT), artifact_entry("data.bin", DATA)]


def test_artifacts_are_signed_sorted_and_checked():
    att = sign_run_attestation(body(artifacts=ARTIFACTS), SIGNER)
    assert [a["name"] for a in att["body"]["artifacts"]] == ["data.bin", "report.md"]
    expect = dataclasses.replace(EXPECT, artifacts=list(reversed(ARTIFACTS)))
    got = verify_run_attestation(att, expected=expect)
    assert got["artifacts"][1] == {
        "name": "report.md",
        "sha256": hashlib.sha256(REPORT).hexdigest(),
        "size": len(REPORT),
    }
    check_artifact(got, "report.md", REPORT)
    check_artifact(got, "data.bin", DATA)
    # the signed list is what the client expects: a missing artifact is refused too
    with pytest.raises(RunAttestationError) as info:
        verify_run_attestation(att, expected=dataclasses.replace(EXPECT, artifacts=[]))
    assert info.value.field == "artifacts"


def test_a_tampered_artifact_hash_fails_verification():
    att = sign_run_attestation(body(artifacts=ARTIFACTS), SIGNER)
    evil = hashlib.sha256(b"# report\nfour cities\n").hexdigest()
    forged = copy.deepcopy(att)
    forged["body"]["artifacts"][1]["sha256"] = evil
    with pytest.raises(RunAttestationError) as info:
        verify_run_attestation(forged, expected=EXPECT)
    assert info.value.field == "signature"
    # re-signed by the right key, the changed hash still differs from what the client knows
    resigned = sign_run_attestation(forged["body"], SIGNER)
    expect = dataclasses.replace(EXPECT, artifacts=ARTIFACTS)
    with pytest.raises(RunAttestationError) as info:
        verify_run_attestation(resigned, expected=expect)
    assert info.value.field == "artifacts"
    # and the genuine bytes no longer pass the per-file check against it
    with pytest.raises(RunAttestationError):
        check_artifact(resigned["body"], "report.md", REPORT)


@pytest.mark.parametrize(
    "records",
    [
        [
            {"name": "b", "sha256": "a" * 64, "size": 1},
            {"name": "a", "sha256": "a" * 64, "size": 1},
        ],
        [{"name": "a", "sha256": "A" * 64, "size": 1}],
        [{"name": "a", "sha256": "a" * 64, "size": -1}],
        [{"name": "a", "sha256": "a" * 64, "size": True}],
        [{"name": "a", "sha256": "a" * 64, "size": 1, "extra": 1}],
        [{"name": "a", "sha256": "a" * 64, "size": 1}] * 2,
        {"name": "a", "sha256": "a" * 64, "size": 1},
    ],
)
def test_malformed_artifact_lists_are_refused(records):
    tampered = body()
    tampered["artifacts"] = records
    with pytest.raises(RunAttestationError) as info:
        verify_run_attestation(sign_run_attestation(tampered, SIGNER), expected=EXPECT)
    assert info.value.field == "artifacts"
    if isinstance(records, list) and records[0]["name"] == "a":
        with pytest.raises(ValueError):
            body(artifacts=records)


def test_a_previous_schema_without_artifacts_is_refused():
    old = body()
    del old["artifacts"]
    old["schema"] = "hivemind.run-attestation.v2"
    with pytest.raises(RunAttestationError) as info:
        verify_run_attestation(sign_run_attestation(old, SIGNER), expected=EXPECT)
    assert info.value.field == "schema"
