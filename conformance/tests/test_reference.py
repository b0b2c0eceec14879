"""Every case passes (or is INFO/SKIP for a stated reason) against the reference targets."""

from __future__ import annotations

import dataclasses

import trio
from hivemind_conformance import Credentials, Grade, Level, Profile, RunConfig
from hivemind_conformance._clientctx import client_context_factory
from hivemind_conformance._runner import check_hub, run_cases, select
from hivemind_conformance.cases import CLIENT_CASES, HUB_CASES
from hivemind_conformance.reference_hub import ReferenceHub, serve_reference_hub
from hivemind_conformance.selfcheck import (
    TEST,
    hub_run_config,
    launcher_for,
    reference_hub_config,
    reference_identity,
)
from hivemind_proto import HiveMessage, MessageType, bus_message

BASE = RunConfig(
    target="",
    client=TEST,
    profile=Profile.N,
    timeout=20,
    reply_timeout=4,
    quiet_timeout=0.5,
    close_timeout=2.0,
    nonce_samples=300,
    concurrency=4,
    seed=7,
)
#: Cases that cannot be driven through the echo contract (each says why when skipped).
NOT_DRIVABLE = {
    "H16", "H28", "H30", "H31", "H40", "H41", "H42", "H44", "H45", "H49",
    "C06", "C13", "C19", "C20",
}  # fmt: skip


def _check(results: list) -> None:
    assert results
    for result in results:
        case = result.case
        detail = f"{case.id}: {result.grade} {result.expected} / {result.actual}"
        if case.check in NOT_DRIVABLE:
            assert result.grade in (Grade.SKIP, Grade.INFO), detail
            assert result.note, detail
        elif case.level is Level.INFO:
            assert result.grade is Grade.INFO, detail
        else:
            assert result.grade is Grade.PASS, detail


async def test_every_hub_case_passes_against_the_reference_hub() -> None:
    hub_config = reference_hub_config()
    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_reference_hub, hub_config)
            config = hub_run_config(BASE, f"ws://127.0.0.1:{port}", hub_config)
            results = await check_hub(config)
            nursery.cancel_scope.cancel()
    assert len(results) == len(HUB_CASES)
    _check(results)


async def test_every_client_case_passes_against_the_reference_testee() -> None:
    launch = launcher_for(reference_identity(noise=True))
    with trio.fail_after(90):
        results = await run_cases(CLIENT_CASES, BASE, client_context_factory(launch))
    assert len(results) == len(CLIENT_CASES)
    _check(results)


async def test_missing_credentials_skip_instead_of_failing() -> None:
    hub_config = reference_hub_config()
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_reference_hub, hub_config)
            config = hub_run_config(BASE, f"ws://127.0.0.1:{port}", hub_config)
            config = dataclasses.replace(config, admin=None, other=None, hub_site_id=None)
            results = await check_hub(config, ["H33", "H34", "H34-S", "H36"])
            nursery.cancel_scope.cancel()
    assert {r.case.check: r.grade for r in results} == {
        "H33": Grade.SKIP,
        "H34": Grade.SKIP,
        "H34-S": Grade.SKIP,
        "H36": Grade.SKIP,
    }


async def test_wrong_test_password_fails_the_handshake_cases() -> None:
    hub_config = reference_hub_config()
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_reference_hub, hub_config)
            config = hub_run_config(BASE, f"ws://127.0.0.1:{port}", hub_config)
            config = dataclasses.replace(config, client=Credentials(TEST.access_key, "wrong"))
            results = await check_hub(config, ["hub/3.1/H08", "hub/3.4/H07"])
            nursery.cancel_scope.cancel()
    assert [r.grade for r in results] == [Grade.FAIL, Grade.FAIL]


def test_case_ids_are_unique_and_follow_sections() -> None:
    ids = [c.id for c in HUB_CASES + CLIENT_CASES]
    assert len(ids) == len(set(ids))
    for case in HUB_CASES + CLIENT_CASES:
        mode, section, _ = case.id.split("/")
        assert mode == case.mode
        assert section == case.section
        assert case.requirement.endswith(".")
        assert any(word in case.requirement for word in ("MUST", "SHOULD", "MAY"))


def test_the_spec_checks_are_all_present() -> None:
    checks = {c.check.split("-")[0] for c in HUB_CASES + CLIENT_CASES}
    hub = {f"H{n:02d}" for n in range(1, 51)} | {"H02b"}
    client = {f"C{n:02d}" for n in range(1, 23)}
    assert hub | client <= checks
    assert select(HUB_CASES, Profile.L) != select(HUB_CASES, Profile.N)


class ChattyHub(ReferenceHub):
    """Sends an unsolicited message right behind every echo reply, as a busy hub may."""

    def agent(self, kind: str, data: dict, context: dict) -> None:
        super().agent(kind, data, context)
        note = bus_message("hive.conformance.note", {}, {"destination": context["source"]})
        self.deliver(HiveMessage(MessageType.BUS, note))


async def test_rehandshake_tolerates_old_key_frames_before_the_response() -> None:
    """Frames the hub sealed before it read our new material carry the old key, legitimately.

    The note behind the first echo reply reaches the suite after it sent the
    new HANDSHAKE and before the hub's response: H20 must open it with the
    old key instead of grading the hub FAIL.
    """
    hub_config = reference_hub_config()
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(
                lambda task_status: serve_reference_hub(
                    hub_config, hub=ChattyHub(hub_config), task_status=task_status
                )
            )
            config = hub_run_config(BASE, f"ws://127.0.0.1:{port}", hub_config)
            results = await check_hub(config, patterns=("hub/3.4/H20",))
            nursery.cancel_scope.cancel()
    assert [r.case.check for r in results] == ["H20"]
    _check(results)
