"""``hmctl trust ...``: service attestation, reproduction, the trust store and dev roots."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import click
from hivemind_rooms.attestation import build_dev_app_compose, load_or_create_dev_provider
from hivemind_rooms.canonical import CanonicalError, b64_decode
from rich.console import Console
from rich.table import Table

from ._room_base import RoomGroup, json_option, kv_table, options, runtime
from .client import (
    AttestationInvalid,
    RoomApi,
    RunsUnavailable,
    UsageProblem,
    verify_service,
)

__all__ = ["trust"]

_DEV_KEY_FILE = "attestation-dev-keys.json"


@click.group("trust", cls=RoomGroup)
def trust() -> None:
    """Verify service attestations and manage what this machine trusts."""


def _service_url(ctx: click.Context, service: str | None) -> str:
    if service:
        return service.rstrip("/")
    profile = options(ctx).maybe_profile()
    if profile is None:
        raise UsageProblem("no service given", hint="pass --service URL or run: hmctl init")
    return profile.service


def _reproduce_dev(doc: dict[str, Any], compose_hash: str) -> list[dict[str, str]]:
    """Rebuild the dev app compose from this installation and compare it."""
    steps = []
    served = doc["app_compose"]
    try:
        described = json.loads(served)
        local = build_dev_app_compose(described["config"], version=described["version"])
    except (ValueError, KeyError, TypeError):
        raise AttestationInvalid("the served app compose is not a dev compose") from None
    steps.append(
        {
            "step": "served compose hash",
            "status": "OK"
            if hashlib.sha256(served.encode()).hexdigest() == compose_hash
            else "FAIL",
        }
    )
    same = local == served
    steps.append(
        {
            "step": "rebuilt from local source",
            "status": "OK" if same else "FAIL",
            "detail": hashlib.sha256(local.encode()).hexdigest(),
        }
    )
    return steps


@trust.command("attest")
@click.option("--service", default=None, help="Service URL (default: the profile's).")
@click.option("--raw", is_flag=True, help="Print the raw attestation document as JSON.")
@click.option(
    "--reproduce",
    is_flag=True,
    help="Rebuild the attested compose from this installation and compare.",
)
@json_option
@click.pass_context
def trust_attest(ctx: click.Context, service: str | None, raw: bool, reproduce: bool) -> None:
    """Verify a service's attestation with a fresh nonce and approve its compose hash."""
    rt, opts = runtime(ctx), options(ctx)
    url = _service_url(ctx, service)
    with RoomApi(url) as api:
        verified = verify_service(api, opts.state, opts.trust(rt))
    # the document shown and reproduced is the one that verified, never a second fetch
    doc = dict(verified.document) if verified.document is not None else None
    att = verified.attestation
    if att is None:
        raise UsageProblem(
            "attestation checks are skipped; nothing to show",
            hint="drop --dangerously-skip-attestations",
        )
    data: dict[str, Any] = {
        "service": url,
        "label": att.label,
        "platform": att.platform,
        "app_id": att.app_id,
        "app_version": att.app_version,
        "compose_hash": att.compose_hash,
        "run_signer_pubkey_b64": att.run_signer_pubkey_b64,
        "tls_bound": att.tls_spki_sha256 is not None,
        "decision": verified.decision,
    }
    if raw:
        data["document"] = doc
    steps: list[dict[str, str]] = []
    if reproduce:
        if att.platform != "dev":
            raise RunsUnavailable(
                501,
                "reproducing a TDX deployment needs its published "
                "compose file, which this build does not fetch",
            )
        assert isinstance(doc, dict)
        steps = _reproduce_dev(doc, att.compose_hash)
        data["reproduce"] = steps

    def human(c: Console) -> None:
        rows = [(k, str(v)) for k, v in data.items() if k not in {"document", "reproduce"}]
        c.print(kv_table(rows, title="Service attestation (verified)"))
        if att.label != "attested":
            c.print(
                "UNATTESTED (dev): signed by a development root, not by TDX hardware.",
                style="yellow",
                markup=False,
            )
        for s in steps:
            c.print(f"{s['status']:4} {s['step']} {s.get('detail', '')}", markup=False)
        if raw:
            c.print_json(json.dumps(doc))

    rt.emit(data, human)
    if any(s["status"] != "OK" for s in steps):
        raise AttestationInvalid("the attested compose does not match this installation")


@trust.command("show")
@json_option
@click.pass_context
def trust_show(ctx: click.Context) -> None:
    """Show approved compose hashes per service and the trusted dev roots."""
    rt, state = runtime(ctx), options(ctx).state
    data = state.trust_store()

    def human(c: Console) -> None:
        table = Table("SERVICE", "PLATFORM", "COMPOSE HASH", "APPROVED")
        for url, rec in sorted(data["services"].items()):
            table.add_row(
                url,
                str(rec.get("platform", "")),
                str(rec.get("approved_compose_hash")),
                str(rec.get("approved_at")),
            )
        c.print(table)
        for root in data["dev_roots"]:
            c.print(f"dev root: {root}", markup=False)

    rt.emit(data, human)


@trust.command("reset")
@click.argument("service")
@click.pass_context
def trust_reset(ctx: click.Context, service: str) -> None:
    """Forget the approved compose hash of SERVICE (the next use asks again)."""
    found = options(ctx).state.forget_service(service)
    if not found:
        raise UsageProblem(f"{service} has no trust record")
    runtime(ctx).notice(f"forgot {service}")


@trust.group("dev-root", cls=RoomGroup)
def dev_root() -> None:
    """Development attestation roots (software keys of dev room services)."""


def _check_key(key: str) -> str:
    try:
        b64_decode(key, length=32)
    except CanonicalError:
        raise UsageProblem("a dev root is 32 bytes of standard base64 (44 characters)") from None
    return key


@dev_root.command("add")
@click.argument("key", required=False)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Read the root of a room service running on this machine from its data dir.",
)
@click.pass_context
def dev_root_add(ctx: click.Context, key: str | None, data_dir: Path | None) -> None:
    """Trust a dev root KEY (or the one of a local service's --data-dir).

    Dev attestations are accepted only from services on this machine unless
    --allow-dev-attestation is given; answers are labelled UNATTESTED (dev).
    """
    if (key is None) == (data_dir is None):
        raise UsageProblem("give exactly one of KEY or --data-dir")
    if data_dir is not None:
        if not (data_dir / _DEV_KEY_FILE).is_file():
            raise UsageProblem(
                f"{data_dir} holds no dev attestation keys",
                hint="start the service once: hmctl rooms serve --data-dir DIR",
            )
        key = load_or_create_dev_provider(data_dir, "{}").root_public_key_b64()
    assert key is not None
    added = options(ctx).state.add_dev_root(_check_key(key))
    runtime(ctx).notice(("trusted dev root " if added else "already trusted: ") + key)


@dev_root.command("list")
@json_option
@click.pass_context
def dev_root_list(ctx: click.Context) -> None:
    """List the trusted dev roots."""
    roots = options(ctx).state.dev_roots()
    runtime(ctx).emit({"dev_roots": roots}, lambda c: [c.print(r, markup=False) for r in roots])


@dev_root.command("remove")
@click.argument("key")
@click.pass_context
def dev_root_remove(ctx: click.Context, key: str) -> None:
    """Stop trusting a dev root."""
    if not options(ctx).state.remove_dev_root(key):
        raise UsageProblem("that dev root is not trusted")
    runtime(ctx).notice(f"removed dev root {key}")
