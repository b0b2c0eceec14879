from __future__ import annotations

import hashlib
import importlib.util
import tarfile
from pathlib import Path

import pytest
from hivemind_rooms.agents_registry import (
    AgentError,
    AgentSpec,
    agent_file_content,
    agent_files_view,
    files_digest,
    read_archive,
    register_agent,
)
from hivemind_rooms.storage import Storage

_spec = importlib.util.spec_from_file_location(
    "agent_archives", Path(__file__).with_name("agent_archives.py")
)
archives = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(archives)

LIMIT = 1024 * 1024


def test_good_archive_reads_files_and_modes() -> None:
    archive = read_archive(archives.good_agent(), max_archive_bytes=LIMIT)
    assert set(archive.files) == {"Dockerfile", "agent.py", "prompts/secret.txt"}
    assert archive.files["agent.py"] == (b"print('hello')\n", 0o755)
    assert archive.sha256 == hashlib.sha256(archives.good_agent()).hexdigest()


@pytest.mark.parametrize(
    ("members", "fragment"),
    [
        ([archives.file("/etc/passwd", b"x")], "absolute"),
        ([archives.file("../escape", b"x")], "escapes"),
        ([archives.file("a/../../escape", b"x")], "escapes"),
        ([archives.special("link", tarfile.SYMTYPE, "/etc/passwd")], "link"),
        ([archives.special("inner", tarfile.SYMTYPE, "Dockerfile")], "link"),
        ([archives.special("hard", tarfile.LNKTYPE, "../../x")], "link"),
        ([archives.special("dev", tarfile.CHRTYPE)], "not a regular file"),
        ([archives.special("blk", tarfile.BLKTYPE)], "not a regular file"),
        ([archives.special("fifo", tarfile.FIFOTYPE)], "not a regular file"),
        ([archives.file("agent.py", b"x")], "Dockerfile is required"),
        ([archives.file("sub/Dockerfile", b"x")], "Dockerfile is required"),
        ([archives.file("Dockerfile", b"a"), archives.file("./Dockerfile", b"b")], "twice"),
    ],
)
def test_hostile_archives_are_refused(members, fragment) -> None:
    data = (
        archives.tar_gz([archives.file("Dockerfile", b"FROM x\n"), *members])
        if (fragment not in ("Dockerfile is required", "twice"))
        else archives.tar_gz(members)
    )
    with pytest.raises(AgentError, match=fragment) as err:
        read_archive(data, max_archive_bytes=LIMIT)
    assert err.value.status == 400


def test_not_gzip_and_truncated_and_oversize() -> None:
    with pytest.raises(AgentError, match="gzip"):
        read_archive(b"PK\x03\x04 zip file", max_archive_bytes=LIMIT)
    data = archives.good_agent()
    with pytest.raises(AgentError, match="unreadable"):
        read_archive(data[: len(data) // 2], max_archive_bytes=LIMIT)
    with pytest.raises(AgentError) as err:
        read_archive(data, max_archive_bytes=len(data) - 1)
    assert err.value.status == 413


def test_digest_definition() -> None:
    files = [("b", b"2"), ("a", b"1")]
    expected = hashlib.sha256(b"a\x001\x00b\x002\x00").hexdigest()
    assert files_digest(files) == expected
    assert files_digest([]) == hashlib.sha256(b"").hexdigest()


def test_spec_validation() -> None:
    spec = AgentSpec.from_form({"name": " a ", "private_paths": '["./prompts/secret.txt"]'})
    assert spec.name == "a"
    assert spec.private_paths == ("prompts/secret.txt",)
    for bad in (
        {"name": ""},
        {"name": "a", "agent_type": "boss"},
        {"name": "a", "inspection_mode": "open"},
        {"name": "a", "memory_mb": "8"},
        {"name": "a", "max_tokens": "lots"},
        {"name": "a", "private_paths": "{}"},
    ):
        with pytest.raises(AgentError) as err:
            AgentSpec.from_form(bad)
        assert err.value.status == 400


def test_register_inspectable_and_sealed(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    store = storage.tenant("t_00000000000b")
    canary = b"CANARY-SEALED-SOURCE-7f3a"
    archive = read_archive(archives.good_agent(canary), max_archive_bytes=LIMIT)
    spec = AgentSpec.from_form({"name": "q", "private_paths": '["prompts/secret.txt"]'})
    row = register_agent(store, "t_00000000000b", spec, archive)
    plain = [(p, c) for p, (c, _) in archive.files.items()]
    assert row["files_digest"] == files_digest(plain)
    assert row["attested_files_digest"] == files_digest(
        [(p, c) for p, c in plain if p != "prompts/secret.txt"]
    )
    assert agent_file_content(store, row, "agent.py") == canary
    assert {f["path"]: f["attestable"] for f in agent_files_view(store, row["agent_id"])} == {
        "Dockerfile": True,
        "agent.py": True,
        "prompts/secret.txt": False,
    }

    sealed_spec = AgentSpec.from_form({"name": "s", "inspection_mode": "sealed"})
    with pytest.raises(AgentError) as err:
        register_agent(store, "t_00000000000b", sealed_spec, archive)
    assert err.value.status == 503
    # a stand-in cipher is enough here: the real seal is tested with the vault
    sealed = register_agent(
        store,
        "t_00000000000b",
        sealed_spec,
        archive,
        sealer=lambda agent_id, path, data: bytes(b ^ 0x5A for b in data),
    )
    with pytest.raises(AgentError) as err:
        agent_file_content(store, sealed, "agent.py")
    assert err.value.status == 403
    assert len(agent_files_view(store, sealed["agent_id"])) == 3
    assert sealed["files_digest"] == row["files_digest"]
    stored = store.agent_file(sealed["agent_id"], "agent.py")
    assert stored["content"] is None
    assert canary not in bytes(stored["ciphertext"])
