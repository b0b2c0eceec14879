"""Run artifacts sealed at rest under the room key.

The API cases run real rooms through ``create_app`` with the local runner: a
query agent uploads an artifact holding a known marker, and the tests scan
the data directory, restart the service over the same directory, and damage
or move the stored files. The agent's source carries the marker only as hex,
so any plain copy of it on disk would be the artifact itself.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import os
import stat
import time
from pathlib import Path

import pytest
from hivemind_rooms.attestation.run import RUN_SCHEMA, RunAttestationError, check_artifact
from hivemind_rooms.bridge import ArtifactError
from hivemind_rooms.canonical import b64_decode, canonical_json
from hivemind_rooms.pipeline import (
    ARTIFACT_FORMAT,
    SEALED_SUFFIX,
    SealedArtifactSink,
    open_artifact,
    read_artifact,
    seal_artifact,
    sealed_artifact_names,
    sealed_artifact_path,
    sweep_sealed_artifacts,
)
from hivemind_rooms.vault import KeyScope, VaultDecryptError, VaultKeyring, new_secret_key
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

_spec = importlib.util.spec_from_file_location(
    "test_pipeline_support", Path(__file__).with_name("test_pipeline_support.py")
)
rs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rs)
sup = rs.sup

MARKER = b"SEALED-ARTIFACT-CANARY-93c1e4"
PAYLOAD = b"# quarterly report\n" + MARKER + b"\n" + bytes(range(256))
ARTIFACT_QUERY = (
    "from hivemind_agent import Bridge\n"
    "b = Bridge()\n"
    f"b.upload_artifact('report.md', bytes.fromhex('{PAYLOAD.hex()}'))\n"
    "b.finish('see the report')\n"
)

TENANT, OTHER_TENANT = "t_000000000001", "t_000000000002"
ROOM_A = KeyScope.room(TENANT, "room_aaaaaaaaaaaa")
ROOM_B = KeyScope.room(TENANT, "room_bbbbbbbbbbbb")
RUN, OTHER_RUN = "0123456789abcdef", "fedcba9876543210"


# --- the sealed format -------------------------------------------------------------


def test_seal_open_round_trip_hides_the_content() -> None:
    key = new_secret_key()
    sealed = seal_artifact(key, ROOM_A, RUN, "report.md", PAYLOAD)
    assert sealed[0] == ARTIFACT_FORMAT
    assert MARKER not in sealed
    assert len(sealed) == 1 + 24 + len(PAYLOAD) + 16
    assert open_artifact(key, ROOM_A, RUN, "report.md", sealed) == PAYLOAD
    # a fresh nonce every time: the same artifact never seals to the same bytes
    assert seal_artifact(key, ROOM_A, RUN, "report.md", PAYLOAD) != sealed


@pytest.mark.parametrize(
    ("key_of", "scope", "run_id", "name"),
    [
        ("other", ROOM_A, RUN, "report.md"),  # another room's key
        ("same", ROOM_B, RUN, "report.md"),  # another room of the tenant
        ("same", KeyScope.room(OTHER_TENANT, ROOM_A.room_id), RUN, "report.md"),  # tenant
        ("same", ROOM_A, OTHER_RUN, "report.md"),  # another run
        ("same", ROOM_A, RUN, "other.md"),  # another name
    ],
)
def test_associated_data_binds_tenant_room_run_and_name(
    key_of: str, scope: KeyScope, run_id: str, name: str
) -> None:
    key = new_secret_key()
    sealed = seal_artifact(key, ROOM_A, RUN, "report.md", PAYLOAD)
    opener = key if key_of == "same" else new_secret_key()
    with pytest.raises(VaultDecryptError) as info:
        open_artifact(opener, scope, run_id, name, sealed)
    assert str(info.value) == "decryption failed"  # the same opaque message for every cause


def test_every_flipped_byte_and_every_truncation_fails() -> None:
    key = new_secret_key()
    sealed = seal_artifact(key, ROOM_A, RUN, "a.txt", b"short secret")
    for i in range(len(sealed)):
        damaged = bytearray(sealed)
        damaged[i] ^= 0x01
        with pytest.raises(VaultDecryptError):
            open_artifact(key, ROOM_A, RUN, "a.txt", bytes(damaged))
    for n in range(len(sealed)):
        with pytest.raises(VaultDecryptError):
            open_artifact(key, ROOM_A, RUN, "a.txt", sealed[:n])
    with pytest.raises(VaultDecryptError):
        open_artifact(key, ROOM_A, RUN, "a.txt", sealed + b"\x00")


# --- the sink the bridge writes through ---------------------------------------------


def _sink(tmp_path: Path, keyring: VaultKeyring, **limits: int) -> SealedArtifactSink:
    return SealedArtifactSink(tmp_path / "artifacts", keyring, ROOM_A, RUN, **limits)


def test_sink_writes_only_sealed_private_files(tmp_path: Path) -> None:
    keyring, key = VaultKeyring(), new_secret_key()
    keyring.install(ROOM_A, key)
    sink = _sink(tmp_path, keyring)
    path = sink.store("report.md", PAYLOAD)
    assert path == sealed_artifact_path(tmp_path / "artifacts", TENANT, RUN, "report.md")
    assert path.name == "report.md" + SEALED_SUFFIX
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no partial file left
    assert MARKER not in b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert read_artifact(tmp_path / "artifacts", key, ROOM_A, RUN, "report.md") == PAYLOAD
    # replacing an artifact keeps one file with the new content
    sink.store("report.md", b"second version")
    assert read_artifact(tmp_path / "artifacts", key, ROOM_A, RUN, "report.md") == (
        b"second version"
    )
    assert sealed_artifact_names(tmp_path / "artifacts", TENANT, RUN) == ["report.md"]
    assert sink.names == ["report.md"]
    assert read_artifact(tmp_path / "artifacts", key, ROOM_A, RUN, "absent.md") is None


def test_sink_keeps_the_limits_and_refuses_without_the_room_key(tmp_path: Path) -> None:
    keyring = VaultKeyring()
    keyring.install(ROOM_A, new_secret_key())
    sink = _sink(tmp_path, keyring, max_file_bytes=10, max_files=2)
    refusals = []
    for name, content in [("../x", b"a"), ("big.bin", b"x" * 11)]:
        with pytest.raises(ArtifactError) as info:
            sink.store(name, content)
        refusals.append(info.value.status)
    sink.store("a.txt", b"x" * 10)
    sink.store("b.txt", b"b")
    with pytest.raises(ArtifactError) as info:
        sink.store("c.txt", b"c")
    refusals.append(info.value.status)
    assert refusals == [400, 413, 429]
    assert sealed_artifact_names(tmp_path / "artifacts", TENANT, RUN) == ["a.txt", "b.txt"]
    # the room key is dropped (room revoked) or was never opened: nothing is written
    keyring.forget(ROOM_A)
    with pytest.raises(ArtifactError) as info:
        sink.store("a.txt", b"new")
    assert info.value.status == 503
    locked = SealedArtifactSink(tmp_path / "locked", VaultKeyring(), ROOM_A, RUN)
    with pytest.raises(ArtifactError):
        locked.store("a.txt", b"secret")
    assert not (tmp_path / "locked").exists()


def test_sweep_keeps_retention_and_deletes_unsealed_files(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    keyring = VaultKeyring()
    keyring.install(ROOM_A, new_secret_key())
    fresh = SealedArtifactSink(root, keyring, ROOM_A, RUN).store("a.txt", b"kept")
    old = SealedArtifactSink(root, keyring, ROOM_A, OTHER_RUN).store("b.txt", b"expired")
    past = time.time() - 7200
    os.utime(old.parent, (past, past))
    plain = fresh.parent / "legacy.md"  # a plain file as older versions wrote them
    plain.write_bytes(MARKER)
    partial = fresh.parent / ".partial-0011223344556677"
    partial.write_bytes(b"\x01sealed bytes in flight")
    assert sweep_sealed_artifacts(root, 3600) == 1
    assert not old.parent.exists()
    assert fresh.is_file()
    assert partial.is_file()
    assert not plain.exists()
    assert sweep_sealed_artifacts(tmp_path / "missing", 3600) == 0


# --- through the service ------------------------------------------------------------


def _artifact_room(c, tmp_path: Path, tenant: dict, name: str = "artifact-query") -> dict:
    key = tenant["api_key"]
    scope = tenant.get("scope_id") or rs.upload(c, key, "default-scope", "scope")
    query = tenant.get("query_id") or rs.custom_agent(
        c, key, tmp_path, name, "query", ARTIFACT_QUERY
    )
    tenant.update(scope_id=scope, query_id=query)
    return rs.room_with(c, tenant, scope_id=scope, query_id=query)


def _run(c, room: dict, headers: dict[str, str], payer: str = "") -> str:
    paying = {**headers, "X-Hivemind-Api-Key": payer} if payer else headers
    run = rs.wait_run(c, headers, rs.submit(c, room, paying, "the report please"))
    assert run["status"] == "completed", run["error"]
    assert run["artifacts"] == ["report.md"]
    return run["run_id"]


def _get(c, run_id: str, headers: dict[str, str], name: str = "report.md"):
    return c.get(f"/v1/runs/{run_id}/artifacts/{name}", headers=headers)


def test_artifact_is_sealed_at_rest_and_sealed_again_after_restart(tmp_path: Path) -> None:
    with rs.client(tmp_path) as c:
        t = sup.new_tenant(c)
        rs.seed(c, t["api_key"])
        owner = sup.auth(t["api_key"])
        room = _artifact_room(c, tmp_path, t)
        invite = sup.auth(room["token"])
        payer = sup.new_tenant(c, "bob")["api_key"]
        owner_run, invite_run = _run(c, room, owner), _run(c, room, invite, payer)
        r = c.post(f"/v1/rooms/{room['room_id']}/share-link", headers=owner)
        assert r.status_code == 200, r.text
        share = {**sup.auth(r.json()["share_token"]), "X-Hivemind-Api-Key": payer}
        share_run = _run(c, room, share)
        callers = ((owner_run, owner), (invite_run, invite), (share_run, share))
        for run_id, headers in callers:
            r = _get(c, run_id, headers)
            assert r.status_code == 200, r.text
            assert r.content == PAYLOAD
            assert r.headers["content-type"] == "application/octet-stream"
        # callers who may not see the run still get nothing
        other_room = _artifact_room(c, tmp_path, t)
        assert _get(c, owner_run, sup.auth(other_room["token"])).status_code == 404
        assert _get(c, owner_run, invite).status_code == 404  # an invite sees only its runs
        stranger = sup.new_tenant(c, "mallory")
        assert _get(c, owner_run, sup.auth(stranger["api_key"])).status_code == 404
        other_payer = {**share, "X-Hivemind-Api-Key": stranger["api_key"]}
        assert _get(c, share_run, other_payer).status_code == 404  # a share link: its payer only
    assert MARKER not in sup.all_bytes(tmp_path)
    stored = sealed_artifact_path(tmp_path / "artifacts", t["tenant_id"], owner_run, "report.md")
    assert stored.read_bytes()[0] == ARTIFACT_FORMAT
    with rs.client(tmp_path) as c:  # a restart: the keyring is empty
        r = c.get(f"/v1/runs/{owner_run}", headers=owner)  # the run's own text is sealed too
        assert (r.status_code, r.json()["error"]) == (503, "room_sealed")
        listed = {x["run_id"]: x for x in c.get("/v1/runs", headers=owner).json()}
        assert listed[owner_run]["payload_sealed"] is True
        assert listed[owner_run]["output"] is None
        for run_id, headers in callers:
            r = _get(c, run_id, headers)
            assert r.status_code == 503
            assert r.json()["error"] == "room_sealed"
            assert MARKER not in r.content
        r = c.post(f"/v1/rooms/{room['room_id']}/open", headers=invite)
        assert r.status_code == 200, r.text
        run = c.get(f"/v1/runs/{owner_run}", headers=owner).json()
        assert run["artifacts"] == ["report.md"]
        for run_id, headers in callers:
            r = _get(c, run_id, headers)
            assert r.status_code == 200, r.text
            assert r.content == PAYLOAD
        # the open key is no pass for a credential of another room
        assert _get(c, owner_run, sup.auth(other_room["token"])).status_code == 404


def _refused(r) -> None:
    assert r.status_code == 409, r.text
    assert r.json() == {
        "detail": "the stored artifact failed authentication",
        "error": "artifact_unreadable",
    }


def test_damaged_or_moved_artifacts_are_refused(tmp_path: Path) -> None:
    with rs.client(tmp_path) as c:
        t = sup.new_tenant(c)
        rs.seed(c, t["api_key"])
        owner = sup.auth(t["api_key"])
        room_a = _artifact_room(c, tmp_path, t)
        first, second = _run(c, room_a, owner), _run(c, room_a, owner)
        third = _run(c, _artifact_room(c, tmp_path, t), owner)
        root, tenant = tmp_path / "artifacts", t["tenant_id"]
        path = {
            r: sealed_artifact_path(root, tenant, r, "report.md") for r in (first, second, third)
        }
        original = path[first].read_bytes()

        damaged = bytearray(original)
        damaged[len(damaged) // 2] ^= 0x40  # one flipped bit in the ciphertext
        path[first].write_bytes(bytes(damaged))
        _refused(_get(c, first, owner))
        path[first].write_bytes(original[:-1])  # truncated
        _refused(_get(c, first, owner))
        path[first].write_bytes(bytes([ARTIFACT_FORMAT + 1]) + original[1:])  # format byte
        _refused(_get(c, first, owner))
        path[first].write_bytes(original)
        assert _get(c, first, owner).content == PAYLOAD

        # a file moved to another run of the same room, or of another room
        for target in (second, third):
            path[target].write_bytes(original)
            _refused(_get(c, target, owner))
        # renamed within its run
        renamed = sealed_artifact_path(root, tenant, first, "other.md")
        path[first].rename(renamed)
        assert c.get(f"/v1/runs/{first}", headers=owner).json()["artifacts"] == ["other.md"]
        _refused(_get(c, first, owner, "other.md"))
        assert _get(c, first, owner).status_code == 404
        # a plain file (as older versions stored artifacts) is never served as one
        (path[first].parent / "report.md").write_bytes(PAYLOAD)
        r = _get(c, first, owner)
        assert r.status_code == 404
        assert MARKER not in r.content


# --- the run attestation signs the artifacts -----------------------------------------


def test_sink_records_hashes_of_the_bytes_stored_last(tmp_path: Path) -> None:
    keyring = VaultKeyring()
    keyring.install(ROOM_A, new_secret_key())
    sink = _sink(tmp_path, keyring)
    assert sink.attested() == []
    sink.store("z.txt", b"first")
    sink.store("a.bin", PAYLOAD)
    sink.store("z.txt", b"replaced")
    assert sink.attested() == [
        {"name": "a.bin", "sha256": hashlib.sha256(PAYLOAD).hexdigest(), "size": len(PAYLOAD)},
        {"name": "z.txt", "sha256": hashlib.sha256(b"replaced").hexdigest(), "size": 8},
    ]


def test_run_attestation_signs_the_artifact_hash(tmp_path: Path) -> None:
    with rs.client(tmp_path) as c:
        t = sup.new_tenant(c)
        rs.seed(c, t["api_key"])
        owner = sup.auth(t["api_key"])
        room = _artifact_room(c, tmp_path, t)
        run_id = _run(c, room, owner)
        run = c.get(f"/v1/runs/{run_id}", headers=owner).json()
        signer = c.app.state.services.attestation.run_signer.public_key_b64()
        served = _get(c, run_id, owner).content
    att = run["attestation"]
    assert att["signer_pubkey_b64"] == signer
    body = att["body"]
    assert body["schema"] == RUN_SCHEMA
    assert body["artifacts"] == [
        {"name": "report.md", "sha256": hashlib.sha256(PAYLOAD).hexdigest(), "size": len(PAYLOAD)}
    ]
    # the signature covers the list: the same body with another hash does not verify
    key = VerifyKey(b64_decode(signer, length=32))
    key.verify(canonical_json(body), b64_decode(att["signature_b64"], length=64))
    forged = copy.deepcopy(body)
    forged["artifacts"][0]["sha256"] = hashlib.sha256(b"other").hexdigest()
    with pytest.raises(BadSignatureError):
        key.verify(canonical_json(forged), b64_decode(att["signature_b64"], length=64))
    check_artifact(body, "report.md", served)
    for name, data in [("report.md", served + b"x"), ("report.md", b""), ("other.md", served)]:
        with pytest.raises(RunAttestationError) as info:
            check_artifact(body, name, data)
        assert info.value.field == "artifacts"
