"""Prepaid billing: ledger, prices, holds, settlement and credit codes.

Theory of operation. Money is integer micro-USD (1 USD = 1,000,000) and lives
only in the append-only ledger of the control database; a balance is the sum
of a tenant's rows. A run first places a *hold* (negative) sized for its whole
token budget at the most expensive rate of its models; at the end, success or
failure, settlement appends a *release* of the full hold and a *charge* of the
exact cost. Interrupted runs are reconciled by releasing holds that have no
release (:meth:`Billing.release_orphan_holds`).

With enforcement on, a hold needs a configured price for every model and a
balance that covers it; the balance check and the hold insert are one
``BEGIN IMMEDIATE`` transaction, so concurrent runs cannot overdraw. Credit
code redemption is likewise one transaction: check, count, record, credit.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Final, final

from . import credentials
from .credentials import CredentialHasher, CredentialKind
from .storage import ControlStoreProtocol, LedgerEntry, RedeemRefused

__all__ = [
    "DEFAULT_PRICES",
    "Billing",
    "BillingError",
    "HoldResult",
    "SettleResult",
    "cost_micro_usd",
    "usd_to_micro",
]

MICRO: Final = 1_000_000

#: (provider, model, prompt µ$/Mtok, completion µ$/Mtok) inserted at boot when absent.
DEFAULT_PRICES: Final[tuple[tuple[str, str, int, int], ...]] = (
    ("tinfoil", "z-ai/glm-5", 1_000_000, 3_200_000),
    ("openrouter", "z-ai/glm-5", 600_000, 2_080_000),
    ("openrouter", "moonshotai/kimi-k2.6", 750_000, 3_500_000),
    ("openrouter", "moonshotai/kimi-k2.5", 440_000, 2_000_000),
    ("openrouter", "moonshotai/kimi-k2-0905", 400_000, 2_000_000),
    ("openrouter", "moonshotai/kimi-k2-thinking", 600_000, 2_500_000),
    ("openrouter", "moonshotai/kimi-k2", 570_000, 2_300_000),
    ("openrouter", "anthropic/claude-haiku-4.5", 1_000_000, 5_000_000),
    ("openrouter", "anthropic/claude-sonnet-4.5", 3_000_000, 15_000_000),
    ("openrouter", "openai/gpt-5-mini", 250_000, 2_000_000),
    ("openrouter", "google/gemini-2.5-flash-lite", 100_000, 400_000),
    ("openrouter", "google/gemini-2.5-flash", 300_000, 2_500_000),
)

_REDEEM_MESSAGES: Final = {
    "invalid": "credit code is not valid",
    "revoked": "credit code has been revoked",
    "expired": "credit code has expired",
    "exhausted": "credit code has no redemptions left",
    "already_redeemed": "credit code was already redeemed by this tenant",
}


class BillingError(Exception):
    """A billing request is refused; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def usd_to_micro(value: str | int | Decimal, *, field: str = "amount_usd") -> int:
    """Convert a decimal USD amount to micro-USD, rounding half up.

    Args:
        value: A decimal string or integer (floats are refused: inexact).
        field: Name used in error messages.

    Returns:
        The amount in micro-USD.

    Raises:
        BillingError: not a finite decimal number (400).
    """
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise BillingError(400, f"{field} must be a decimal string or an integer")
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise BillingError(400, f"{field} is not a decimal number") from None
    if not amount.is_finite() or abs(amount) > Decimal(10) ** 9:
        raise BillingError(400, f"{field} is out of range")
    return int((amount * MICRO).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def cost_micro_usd(
    prompt_tokens: int, completion_tokens: int, prompt_rate: int, completion_rate: int
) -> int:
    """Price one usage item: ``ceil((p * rate_p + c * rate_c) / 1e6)``, inputs clamped at 0."""
    total = max(prompt_tokens, 0) * prompt_rate + max(completion_tokens, 0) * completion_rate
    return -(-total // MICRO)


@final
@dataclasses.dataclass(frozen=True)
class HoldResult:
    """Outcome of a preflight hold.

    Attributes:
        status: ``held``, ``not_billable`` or ``pricing_missing``.
        hold_micro_usd: The amount reserved (0 unless held).
        entry_id: The hold's ledger entry id, if any.
    """

    status: str
    hold_micro_usd: int = 0
    entry_id: str = ""


@final
@dataclasses.dataclass(frozen=True)
class SettleResult:
    """Outcome of settlement: ``status`` (``settled``/``pricing_missing``) and the cost."""

    status: str
    cost_micro_usd: int
    missing_prices: tuple[str, ...] = ()


@final
class Billing:
    """Billing operations over the control store.

    Args:
        control: The control database.
        hasher: Turns credit codes into stored digests.
        enforce_credits: The ``HIVEMIND_BILLING_ENFORCE_CREDITS`` switch.
        clock: Returns the current Unix time.
    """

    def __init__(
        self,
        control: ControlStoreProtocol,
        hasher: CredentialHasher,
        *,
        enforce_credits: bool,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._control = control
        self._hasher = hasher
        self.enforce_credits = enforce_credits
        self._clock = clock

    def seed_prices(self) -> None:
        """Insert the default price table where rows are absent."""
        now = self._clock()
        for provider, model, prompt, completion in DEFAULT_PRICES:
            row = {
                "provider": provider,
                "model": model,
                "prompt_microusd_per_mtok": prompt,
                "completion_microusd_per_mtok": completion,
                "updated_at": now,
                "source": "default",
            }
            self._control.upsert_price(row, only_if_absent=True)

    # -- balances and grants ---------------------------------------------------

    def balance(self, tenant_id: str) -> int:
        """Return a tenant's balance in micro-USD."""
        return self._control.balance(tenant_id)

    def statement(self, tenant_id: str, limit: int) -> dict[str, Any]:
        """Return ``{tenant_id, balance_micro_usd, ledger}`` for the billing routes."""
        ledger = [_public_entry(r) for r in self._control.ledger(tenant_id, limit)]
        return {
            "tenant_id": tenant_id,
            "balance_micro_usd": self.balance(tenant_id),
            "ledger": ledger,
        }

    def grant(self, tenant_id: str, amount_micro_usd: int, note: str) -> dict[str, Any]:
        """Credit a tenant (admin grant); the amount must be positive.

        Raises:
            BillingError: non-positive amount (400).
        """
        if amount_micro_usd <= 0:
            raise BillingError(400, "amount_usd must be greater than zero")
        entry = self._entry(tenant_id, "credit_grant", amount_micro_usd, {"note": note})
        self._control.append_ledger([entry])
        return {**_entry_dict(entry), "balance_micro_usd": self.balance(tenant_id)}

    # -- holds and settlement ----------------------------------------------------

    def _rates(self, provider: str, models: Sequence[str]) -> tuple[list[int], list[str]]:
        rates: list[int] = []
        missing: list[str] = []
        for model in models:
            row = self._control.get_price(provider, model)
            if row is None:
                missing.append(f"{provider}/{model}")
            else:
                rates += [row["prompt_microusd_per_mtok"], row["completion_microusd_per_mtok"]]
        return rates, missing

    def hold(
        self,
        payer_tenant_id: str,
        *,
        run_id: str,
        provider: str,
        models: Sequence[str],
        max_tokens: int,
        metadata: Mapping[str, Any] | None = None,
    ) -> HoldResult:
        """Reserve the worst-case cost of a run before it starts.

        Raises:
            BillingError: enforcing and a price is missing (400) or the balance is short (402).
        """
        models = sorted({m for m in models if m})
        if not provider or not models or max_tokens <= 0:
            return HoldResult("not_billable")
        rates, missing = self._rates(provider, models)
        if missing:
            if self.enforce_credits:
                raise BillingError(400, f"billing price is not configured for {', '.join(missing)}")
            return HoldResult("pricing_missing")
        amount = -(-max_tokens * max(rates) // MICRO)
        meta = {**(metadata or {}), "provider": provider, "models": models}
        meta["max_tokens"] = max_tokens
        entry = self._entry(payer_tenant_id, "usage_hold", -amount, meta, run_id=run_id)
        seen = self._control.place_hold(entry, require_balance=self.enforce_credits)
        if seen is None:
            raise BillingError(
                402,
                f"insufficient billing credit: balance_micro_usd={self.balance(payer_tenant_id)}, "
                f"required_hold_micro_usd={amount}",
            )
        return HoldResult("held", amount, entry.entry_id)

    def settle(
        self,
        payer_tenant_id: str,
        *,
        run_id: str,
        hold_micro_usd: int,
        stages: Mapping[str, Mapping[str, Any]],
        metadata: Mapping[str, Any] | None = None,
    ) -> SettleResult:
        """Release a run's hold and charge its exact cost, in one ledger write.

        Args:
            payer_tenant_id: Who pays.
            run_id: The run.
            hold_micro_usd: The amount held at preflight (0 if none).
            stages: Per stage ``{provider, model, prompt_tokens, completion_tokens}``.
            metadata: Extra metadata for both entries.

        Returns:
            The settlement outcome; unpriced stages cost 0 and are listed.
        """
        cost = 0
        missing: list[str] = []
        for stage in stages.values():
            provider, model = str(stage.get("provider", "")), str(stage.get("model", ""))
            row = self._control.get_price(provider, model) if provider and model else None
            if row is None:
                if int(stage.get("prompt_tokens", 0)) or int(stage.get("completion_tokens", 0)):
                    missing.append(f"{provider}/{model}")
                continue
            cost += cost_micro_usd(
                int(stage.get("prompt_tokens", 0)),
                int(stage.get("completion_tokens", 0)),
                row["prompt_microusd_per_mtok"],
                row["completion_microusd_per_mtok"],
            )
        meta = {**(metadata or {}), "missing_prices": missing}
        entries = []
        if hold_micro_usd > 0:
            entries.append(
                self._entry(payer_tenant_id, "usage_release", hold_micro_usd, meta, run_id=run_id)
            )
        if cost > 0:
            entries.append(self._entry(payer_tenant_id, "usage_charge", -cost, meta, run_id=run_id))
        self._control.append_ledger(entries)
        status = "pricing_missing" if missing else "settled"
        return SettleResult(status, cost, tuple(missing))

    def release_orphan_holds(self) -> int:
        """Release every hold that has no release (runs interrupted by a restart).

        Returns:
            The number of holds released.
        """
        rows = self._control.unreleased_holds()
        entries = [
            self._entry(
                r["tenant_id"],
                "usage_release",
                int(r["amount"]),
                {"reason": "interrupted"},
                run_id=r["run_id"],
            )
            for r in rows
        ]
        self._control.append_ledger(entries)
        return len(entries)

    # -- credit codes --------------------------------------------------------------

    def create_credit_code(
        self,
        *,
        credit_micro_usd: int,
        max_redemptions: int,
        expires_at: float | None,
        label: str,
    ) -> dict[str, Any]:
        """Mint a credit code; the plaintext appears only in this return value.

        Raises:
            BillingError: negative credit, no uses, or an expiry in the past (400).
        """
        now = self._clock()
        if credit_micro_usd < 0:
            raise BillingError(400, "credit_usd must not be negative")
        if max_redemptions < 1:
            raise BillingError(400, "max_redemptions must be at least 1")
        if expires_at is not None and expires_at <= now:
            raise BillingError(400, "expires_at must be in the future")
        code = credentials.new_credential(CredentialKind.CREDIT_CODE)
        row = {
            "code_id": credentials.new_credit_code_id(),
            "code_hash": self._hasher.digest(code),
            "label": label,
            "credit_micro_usd": credit_micro_usd,
            "max_redemptions": max_redemptions,
            "created_at": now,
            "expires_at": expires_at,
        }
        self._control.insert_credit_code(row)
        record = _code_record({**row, "redeemed_count": 0, "revoked_at": None}, now)
        return {**record, "code": code}

    def list_credit_codes(self, *, include_revoked: bool, limit: int) -> list[dict[str, Any]]:
        """Return credit code records (never their plaintext)."""
        now = self._clock()
        rows = self._control.list_credit_codes(include_revoked=include_revoked, limit=limit)
        return [_code_record(r, now) for r in rows]

    def revoke_credit_code(self, code_id: str) -> None:
        """Revoke a code.

        Raises:
            BillingError: unknown or already revoked (404).
        """
        if not self._control.revoke_credit_code(code_id, self._clock()):
            raise BillingError(404, "credit code not found or already revoked")

    def redeem(self, tenant_id: str, code: str) -> dict[str, Any]:
        """Redeem a credit code for a tenant, atomically.

        Raises:
            BillingError: missing code (400); invalid, revoked, expired, exhausted or
                already redeemed (403).
        """
        if not isinstance(code, str) or not code.strip():
            raise BillingError(400, "credit_code is required")
        try:
            digest = self._hasher.digest(code.strip())
        except credentials.CredentialError:
            raise BillingError(403, _REDEEM_MESSAGES["invalid"]) from None
        redemption_id = credentials.new_redemption_id()
        template = self._entry(tenant_id, "credit_grant", 0, {"redemption_id": redemption_id})
        try:
            row = self._control.redeem_credit_code(
                digest, tenant_id, redemption_id, template, self._clock()
            )
        except RedeemRefused as exc:
            raise BillingError(403, _REDEEM_MESSAGES[exc.reason]) from None
        return {
            "code_id": row["code_id"],
            "redemption_id": redemption_id,
            "credit_micro_usd": row["credit_micro_usd"],
            "balance_micro_usd": self.balance(tenant_id),
        }

    # -- prices ----------------------------------------------------------------------

    def set_price(
        self, provider: str, model: str, prompt_usd: Any, completion_usd: Any, source: str
    ) -> dict[str, Any]:
        """Upsert a price given in USD per million tokens.

        Raises:
            BillingError: empty names or negative prices (400).
        """
        provider, model = provider.strip().lower(), model.strip()
        if not provider or not model:
            raise BillingError(400, "provider and model are required")
        prompt = usd_to_micro(prompt_usd, field="prompt_usd_per_million")
        completion = usd_to_micro(completion_usd, field="completion_usd_per_million")
        if prompt < 0 or completion < 0:
            raise BillingError(400, "prices must not be negative")
        row = {
            "provider": provider,
            "model": model,
            "prompt_microusd_per_mtok": prompt,
            "completion_microusd_per_mtok": completion,
            "updated_at": self._clock(),
            "source": source,
        }
        self._control.upsert_price(row)
        return dict(self._control.get_price(provider, model) or row)

    def list_prices(self) -> list[dict[str, Any]]:
        """Return every price row."""
        return self._control.list_prices()

    def delete_price(self, provider: str, model: str) -> None:
        """Delete a price.

        Raises:
            BillingError: no such price (404).
        """
        if not self._control.delete_price(provider.strip().lower(), model):
            raise BillingError(404, "price not found")

    def accounts(self) -> list[dict[str, Any]]:
        """Return per-tenant totals for the admin billing overview."""
        rows = self._control.account_totals()
        for row in rows:
            row["suspended"] = bool(row["suspended"])
        return rows

    def _entry(
        self,
        tenant_id: str,
        kind: str,
        amount: int,
        metadata: Mapping[str, Any],
        *,
        run_id: str | None = None,
    ) -> LedgerEntry:
        return LedgerEntry(
            entry_id=credentials.new_ledger_entry_id(),
            tenant_id=tenant_id,
            created_at=self._clock(),
            kind=kind,
            amount_micro_usd=amount,
            run_id=run_id,
            metadata=dict(metadata),
        )


def _entry_dict(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "entry_id": entry.entry_id,
        "tenant_id": entry.tenant_id,
        "created_at": entry.created_at,
        "kind": entry.kind,
        "run_id": entry.run_id,
        "amount_micro_usd": entry.amount_micro_usd,
        "metadata": entry.metadata,
    }


def _public_entry(row: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("entry_id", "tenant_id", "created_at", "kind", "run_id", "amount_micro_usd")
    return {**{k: row[k] for k in keys}, "metadata": row["metadata"]}


def _code_record(row: Mapping[str, Any], now: float) -> dict[str, Any]:
    expired = row["expires_at"] is not None and row["expires_at"] <= now
    remaining = max(row["max_redemptions"] - row["redeemed_count"], 0)
    keys = (
        "code_id",
        "label",
        "credit_micro_usd",
        "max_redemptions",
        "redeemed_count",
        "created_at",
        "expires_at",
        "revoked_at",
    )
    return {
        **{k: row[k] for k in keys},
        "remaining_redemptions": remaining,
        "expired": expired,
        "active": row["revoked_at"] is None and not expired and remaining > 0,
    }
