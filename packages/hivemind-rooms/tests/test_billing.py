from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from hivemind_rooms.billing import Billing, BillingError, cost_micro_usd, usd_to_micro
from hivemind_rooms.credentials import CredentialHasher
from hivemind_rooms.storage import Storage

PEPPER = b"p" * 32


def make(tmp_path: Path, *, enforce: bool = False, clock=time.time):
    storage = Storage(tmp_path)
    billing = Billing(
        storage.control, CredentialHasher(PEPPER), enforce_credits=enforce, clock=clock
    )
    billing.seed_prices()
    return storage, billing


def add_tenant(storage: Storage, n: int) -> str:
    tid = f"t_{n:012x}"
    storage.control.insert_tenant(tid, f"tenant{n}", f"{n:064x}", 1.0)
    return tid


@pytest.mark.parametrize(
    ("raw", "micro"),
    [
        ("1", 1_000_000),
        ("0.0000005", 1),
        ("0.0000004", 0),
        ("3.00", 3_000_000),
        (2, 2_000_000),
        ("-0.5", -500_000),
    ],
)
def test_usd_to_micro_rounds_half_up(raw, micro) -> None:
    assert usd_to_micro(raw) == micro


@pytest.mark.parametrize("raw", ["abc", "NaN", "Infinity", 1.5, True, None, "1e99"])
def test_usd_to_micro_rejects(raw) -> None:
    with pytest.raises(BillingError):
        usd_to_micro(raw)


def test_cost_rounds_up_and_clamps() -> None:
    assert cost_micro_usd(1, 0, 750_000, 3_500_000) == 1  # 0.75 -> 1
    assert cost_micro_usd(1_000_000, 1_000_000, 750_000, 3_500_000) == 4_250_000
    assert cost_micro_usd(-5, -5, 750_000, 3_500_000) == 0


def test_default_prices_seeded_once(tmp_path: Path) -> None:
    storage, billing = make(tmp_path)
    billing.set_price("OpenRouter", "moonshotai/kimi-k2.6", "1", "2", "admin")
    billing.seed_prices()  # must not overwrite the admin price
    row = storage.control.get_price("openrouter", "moonshotai/kimi-k2.6")
    assert row["prompt_microusd_per_mtok"] == 1_000_000
    assert row["source"] == "admin"
    assert len(billing.list_prices()) == 12
    billing.delete_price("openrouter", "moonshotai/kimi-k2.6")
    with pytest.raises(BillingError) as err:
        billing.delete_price("openrouter", "moonshotai/kimi-k2.6")
    assert err.value.status == 404


def test_hold_and_settle_round_trip(tmp_path: Path) -> None:
    storage, billing = make(tmp_path, enforce=True)
    tid = add_tenant(storage, 1)
    billing.grant(tid, 10_000_000, "seed")
    hold = billing.hold(
        tid,
        run_id="r1",
        provider="openrouter",
        models=["moonshotai/kimi-k2.6"],
        max_tokens=1_000_000,
    )
    # worst case rate: 3.5 USD per million tokens
    assert hold.status == "held"
    assert hold.hold_micro_usd == 3_500_000
    assert billing.balance(tid) == 6_500_000
    stages = {
        "query": {
            "provider": "openrouter",
            "model": "moonshotai/kimi-k2.6",
            "prompt_tokens": 1000,
            "completion_tokens": 100,
        }
    }
    result = billing.settle(tid, run_id="r1", hold_micro_usd=hold.hold_micro_usd, stages=stages)
    assert result.cost_micro_usd == cost_micro_usd(1000, 100, 750_000, 3_500_000) == 1100
    assert billing.balance(tid) == 10_000_000 - 1100
    kinds = [e["kind"] for e in billing.statement(tid, 10)["ledger"]]
    assert sorted(kinds) == ["credit_grant", "usage_charge", "usage_hold", "usage_release"]


def test_enforcement_refuses_short_balance_and_missing_price(tmp_path: Path) -> None:
    storage, billing = make(tmp_path, enforce=True)
    tid = add_tenant(storage, 2)
    with pytest.raises(BillingError) as err:
        billing.hold(
            tid, run_id="r", provider="openrouter", models=["moonshotai/kimi-k2.6"], max_tokens=1000
        )
    assert err.value.status == 402
    assert "required_hold_micro_usd=3500" in err.value.message
    with pytest.raises(BillingError) as err:
        billing.hold(
            tid, run_id="r", provider="openrouter", models=["nobody/model"], max_tokens=1000
        )
    assert err.value.status == 400
    assert storage.control.ledger(tid, 10) == []


def test_without_enforcement_balance_may_go_negative(tmp_path: Path) -> None:
    storage, billing = make(tmp_path, enforce=False)
    tid = add_tenant(storage, 3)
    hold = billing.hold(
        tid, run_id="r", provider="openrouter", models=["moonshotai/kimi-k2.6"], max_tokens=1000
    )
    assert hold.status == "held"
    assert billing.balance(tid) == -3500
    assert (
        billing.hold(tid, run_id="r2", provider="openrouter", models=["x/y"], max_tokens=10).status
        == "pricing_missing"
    )
    assert (
        billing.hold(tid, run_id="r3", provider="", models=["x"], max_tokens=10).status
        == "not_billable"
    )


def test_concurrent_holds_cannot_overdraw(tmp_path: Path) -> None:
    storage, billing = make(tmp_path, enforce=True)
    tid = add_tenant(storage, 4)
    billing.grant(tid, 10 * 3500, "exactly ten holds")
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        own = Storage(tmp_path)  # its own connections
        b = Billing(own.control, CredentialHasher(PEPPER), enforce_credits=True)
        for j in range(5):
            try:
                b.hold(
                    tid,
                    run_id=f"{i}-{j}",
                    provider="openrouter",
                    models=["moonshotai/kimi-k2.6"],
                    max_tokens=1000,
                )
                result = "ok"
            except BillingError:
                result = "refused"
            with lock:
                outcomes.append(result)
        own.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert outcomes.count("ok") == 10
    assert outcomes.count("refused") == 20
    assert billing.balance(tid) == 0


def test_orphan_holds_are_released(tmp_path: Path) -> None:
    storage, billing = make(tmp_path)
    tid = add_tenant(storage, 5)
    billing.hold(
        tid, run_id="a", provider="openrouter", models=["moonshotai/kimi-k2.6"], max_tokens=1000
    )
    h = billing.hold(
        tid, run_id="b", provider="openrouter", models=["moonshotai/kimi-k2.6"], max_tokens=1000
    )
    billing.settle(tid, run_id="b", hold_micro_usd=h.hold_micro_usd, stages={})
    assert billing.balance(tid) == -3500
    assert billing.release_orphan_holds() == 1
    assert billing.balance(tid) == 0
    assert billing.release_orphan_holds() == 0


def test_credit_code_lifecycle(tmp_path: Path) -> None:
    now = [1000.0]
    storage, billing = make(tmp_path, clock=lambda: now[0])
    a, b, c = (add_tenant(storage, n) for n in (10, 11, 12))
    code = billing.create_credit_code(
        credit_micro_usd=3_000_000, max_redemptions=2, expires_at=2000.0, label="promo"
    )
    assert code["code"].startswith("hmcc_")
    assert code["active"] is True
    first = billing.redeem(a, code["code"])
    assert first["credit_micro_usd"] == 3_000_000
    assert first["balance_micro_usd"] == 3_000_000
    with pytest.raises(BillingError, match="already redeemed") as err:
        billing.redeem(a, code["code"])
    assert err.value.status == 403
    billing.redeem(b, code["code"])
    with pytest.raises(BillingError, match="no redemptions left"):
        billing.redeem(c, code["code"])
    [listed] = billing.list_credit_codes(include_revoked=False, limit=10)
    assert listed["remaining_redemptions"] == 0
    assert "code" not in listed
    with pytest.raises(BillingError, match="not valid"):
        billing.redeem(c, "hmcc_" + "A" * 43)
    with pytest.raises(BillingError) as err:
        billing.redeem(c, "  ")
    assert err.value.status == 400


def test_credit_code_expiry_and_revoke(tmp_path: Path) -> None:
    now = [1000.0]
    storage, billing = make(tmp_path, clock=lambda: now[0])
    a = add_tenant(storage, 20)
    with pytest.raises(BillingError):
        billing.create_credit_code(
            credit_micro_usd=1, max_redemptions=1, expires_at=999.0, label=""
        )
    exp = billing.create_credit_code(
        credit_micro_usd=1, max_redemptions=5, expires_at=1500.0, label=""
    )
    rev = billing.create_credit_code(
        credit_micro_usd=1, max_redemptions=5, expires_at=None, label=""
    )
    billing.revoke_credit_code(rev["code_id"])
    with pytest.raises(BillingError) as err:
        billing.revoke_credit_code(rev["code_id"])
    assert err.value.status == 404
    now[0] = 1500.0
    with pytest.raises(BillingError, match="expired"):
        billing.redeem(a, exp["code"])
    with pytest.raises(BillingError, match="revoked"):
        billing.redeem(a, rev["code"])
    assert billing.balance(a) == 0


def test_zero_credit_code_redeems_without_grant(tmp_path: Path) -> None:
    storage, billing = make(tmp_path)
    a = add_tenant(storage, 30)
    code = billing.create_credit_code(
        credit_micro_usd=0, max_redemptions=1, expires_at=None, label=""
    )
    assert billing.redeem(a, code["code"])["credit_micro_usd"] == 0
    assert storage.control.ledger(a, 10) == []


_REDEEM_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from hivemind_rooms.billing import Billing, BillingError
    from hivemind_rooms.credentials import CredentialHasher
    from hivemind_rooms.storage import Storage
    data, code, go = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    tenants = sys.argv[4:]
    storage = Storage(data)
    billing = Billing(storage.control, CredentialHasher(b"p" * 32), enforce_credits=True)
    deadline = time.monotonic() + 30
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.001)
    for tid in tenants:
        try:
            billing.redeem(tid, code)
            print("ok")
        except BillingError as exc:
            print("refused", exc.status)
    """
)


def test_concurrent_redemption_across_processes_is_exact(tmp_path: Path) -> None:
    storage, billing = make(tmp_path)
    tenants = [add_tenant(storage, 100 + n) for n in range(16)]
    code = billing.create_credit_code(
        credit_micro_usd=1_000_000, max_redemptions=5, expires_at=None, label="race"
    )
    go = tmp_path / "go"
    procs = []
    for p in range(4):
        # every process tries for every tenant (duplicates race with each other too)
        mine = tenants[p * 4 : (p + 1) * 4] + tenants[::-1][p * 4 : (p + 1) * 4]
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", _REDEEM_SCRIPT, str(tmp_path), code["code"], str(go), *mine],
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    time.sleep(0.5)
    go.touch()
    lines: list[str] = []
    for proc in procs:
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        lines += out.split("\n")
    assert lines.count("ok") == 5
    assert sum(line.startswith("refused 403") for line in lines) == 32 - 5
    total = sum(billing.balance(t) for t in tenants)
    assert total == 5_000_000
    [listed] = billing.list_credit_codes(include_revoked=True, limit=5)
    assert listed["redeemed_count"] == 5
    redemptions = storage.control.file.query("SELECT * FROM _credit_code_redemptions")
    assert len(redemptions) == 5
    assert len({r["tenant_id"] for r in redemptions}) == 5
