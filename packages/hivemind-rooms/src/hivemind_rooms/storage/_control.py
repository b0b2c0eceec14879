"""The control database: tenants, invite tokens, billing ledger, credit codes, prices.

Every method is one transaction. The two money paths that check a value and
then write depending on it (:meth:`ControlStore.place_hold` and
:meth:`ControlStore.redeem_credit_code`) run under ``BEGIN IMMEDIATE`` so that
concurrent callers, in this process or another one, are serialized by SQLite's
write lock.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, final

from ._db import SqliteFile
from ._schema import CONTROL_MIGRATIONS

__all__ = ["ControlStore", "LedgerEntry", "RedeemRefused"]

Row = dict[str, Any]


@final
@dataclasses.dataclass(frozen=True)
class LedgerEntry:
    """One append-only ledger row (amounts in integer micro-USD)."""

    entry_id: str
    tenant_id: str
    created_at: float
    kind: str
    amount_micro_usd: int
    run_id: str | None = None
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)

    def as_params(self) -> tuple[Any, ...]:
        """Return the values in the ledger table's column order."""
        meta = json.dumps(self.metadata, sort_keys=True, separators=(",", ":"))
        return (
            self.entry_id,
            self.tenant_id,
            self.created_at,
            self.kind,
            self.run_id,
            self.amount_micro_usd,
            meta,
        )


class RedeemRefused(Exception):
    """A credit code cannot be redeemed; ``reason`` is a short stable word."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_LEDGER_INSERT = (
    "INSERT INTO _billing_ledger (entry_id, tenant_id, created_at, kind, run_id, "
    "amount_micro_usd, metadata) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_BALANCE = "SELECT COALESCE(SUM(amount_micro_usd), 0) AS b FROM _billing_ledger WHERE tenant_id = ?"


@final
class ControlStore:
    """Typed access to the control database file.

    Args:
        path: The ``control.sqlite3`` file.
    """

    def __init__(self, path: Path) -> None:
        self.file = SqliteFile(path, CONTROL_MIGRATIONS)

    def close(self) -> None:
        """Close the underlying file."""
        self.file.close()

    # -- tenants ---------------------------------------------------------------

    def insert_tenant(self, tenant_id: str, name: str, key_hash: str, now: float) -> Row:
        """Create a tenant row and return it."""
        self.file.execute(
            "INSERT INTO _tenants (id, name, api_key_hash, db_name, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (tenant_id, name, key_hash, f"tenant_{tenant_id}", now),
        )
        return self.get_tenant(tenant_id) or {}

    def get_tenant(self, tenant_id: str) -> Row | None:
        """Return the tenant row or None."""
        return self.file.one("SELECT * FROM _tenants WHERE id = ?", (tenant_id,))

    def tenant_by_key_hash(self, key_hash: str) -> Row | None:
        """Return the tenant whose owner key hashes to ``key_hash``."""
        return self.file.one("SELECT * FROM _tenants WHERE api_key_hash = ?", (key_hash,))

    def tenant_name_taken(self, name: str, *, except_id: str = "") -> bool:
        """Tell whether another tenant already uses ``name``."""
        row = self.file.one(
            "SELECT 1 AS x FROM _tenants WHERE name = ? AND id != ?", (name, except_id)
        )
        return row is not None

    def list_tenants(self) -> list[Row]:
        """Return every tenant, oldest first."""
        return self.file.query("SELECT * FROM _tenants ORDER BY created_at, id")

    def set_tenant_key_hash(self, tenant_id: str, key_hash: str) -> bool:
        """Replace a tenant's owner key hash; False if the tenant is unknown."""
        return (
            self.file.execute(
                "UPDATE _tenants SET api_key_hash = ? WHERE id = ?", (key_hash, tenant_id)
            )
            == 1
        )

    def set_owner_pubkey(self, tenant_id: str, pubkey_b64: str) -> bool:
        """Register the tenant's owner signing key once; True if it is now the stored key."""
        with self.file.transaction() as db:
            db.execute(
                "UPDATE _tenants SET owner_pubkey_b64 = ? WHERE id = ? "
                "AND owner_pubkey_b64 IS NULL",
                (pubkey_b64, tenant_id),
            )
            row = db.execute(
                "SELECT owner_pubkey_b64 FROM _tenants WHERE id = ?", (tenant_id,)
            ).fetchone()
            return row is not None and row[0] == pubkey_b64

    def rename_tenant(self, tenant_id: str, name: str) -> bool:
        """Change a tenant's display name; False if the tenant is unknown."""
        return (
            self.file.execute("UPDATE _tenants SET name = ? WHERE id = ?", (name, tenant_id)) == 1
        )

    def delete_tenant(self, tenant_id: str) -> bool:
        """Delete a tenant and (by cascade) its tokens, ledger and redemptions."""
        return self.file.execute("DELETE FROM _tenants WHERE id = ?", (tenant_id,)) == 1

    # -- invite tokens ---------------------------------------------------------

    def insert_token(
        self,
        token_hash: str,
        token_id: str,
        tenant_id: str,
        label: str,
        constraints: dict[str, Any],
        now: float,
        expires_at: float | None = None,
    ) -> None:
        """Store an invite token by its digest (plus its public short id and expiry)."""
        self.file.execute(
            "INSERT INTO _capability_tokens (token_hash, token_id, tenant_id, kind, label, "
            "constraints, created_at, expires_at) VALUES (?, ?, ?, 'query', ?, ?, ?, ?)",
            (
                token_hash,
                token_id,
                tenant_id,
                label,
                json.dumps(constraints, sort_keys=True),
                now,
                expires_at,
            ),
        )

    def token_by_hash(self, token_hash: str) -> Row | None:
        """Return the token row (with ``constraints`` parsed) or None."""
        row = self.file.one("SELECT * FROM _capability_tokens WHERE token_hash = ?", (token_hash,))
        return _parse_constraints(row) if row else None

    def list_tokens(self, tenant_id: str) -> list[Row]:
        """Return a tenant's invite tokens, newest first (revoked ones included)."""
        rows = self.file.query(
            "SELECT * FROM _capability_tokens WHERE tenant_id = ? ORDER BY created_at DESC",
            (tenant_id,),
        )
        return [_parse_constraints(r) for r in rows]

    def tokens_with_id_prefix(self, tenant_id: str, prefix: str) -> list[Row]:
        """Return a tenant's tokens whose public id starts with ``prefix``."""
        rows = self.file.query(
            "SELECT * FROM _capability_tokens WHERE tenant_id = ? AND substr(token_id, 1, ?) = ?",
            (tenant_id, len(prefix), prefix),
        )
        return [_parse_constraints(r) for r in rows]

    def revoke_tokens(self, tenant_id: str, token_hashes: Sequence[str], now: float) -> int:
        """Revoke the given live tokens of a tenant; return how many changed."""
        with self.file.transaction() as db:
            count = 0
            for token_hash in token_hashes:
                count += db.execute(
                    "UPDATE _capability_tokens SET revoked_at = ? WHERE tenant_id = ? "
                    "AND token_hash = ? AND revoked_at IS NULL",
                    (now, tenant_id, token_hash),
                ).rowcount
            return count

    def revoke_all_tokens(self, tenant_id: str, now: float, *, room_id: str = "") -> int:
        """Revoke every live token of a tenant (or only those bound to ``room_id``)."""
        sql = (
            "UPDATE _capability_tokens SET revoked_at = ? WHERE tenant_id = ? "
            "AND revoked_at IS NULL"
        )
        params: tuple[Any, ...] = (now, tenant_id)
        if room_id:
            sql += " AND json_extract(constraints, '$.room_id') = ?"
            params += (room_id,)
        return self.file.execute(sql, params)

    # -- share links -------------------------------------------------------------

    def get_share_link(self, tenant_id: str, room_id: str) -> Row | None:
        """Return a room's share link row (digest only) or None."""
        return self.file.one(
            "SELECT * FROM _room_share_links WHERE tenant_id = ? AND room_id = ?",
            (tenant_id, room_id),
        )

    def share_link_by_hash(self, token_hash: str) -> Row | None:
        """Return the share link whose token has this digest, or None."""
        return self.file.one("SELECT * FROM _room_share_links WHERE token_hash = ?", (token_hash,))

    def put_share_link(
        self, tenant_id: str, room_id: str, token_hash: str, token_id: str, now: float
    ) -> None:
        """Create a room's share link, or replace its token (rotation)."""
        self.file.execute(
            "INSERT INTO _room_share_links (tenant_id, room_id, token_hash, token_id, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant_id, room_id) DO UPDATE SET "
            "token_hash = excluded.token_hash, token_id = excluded.token_id, "
            "rotated_at = excluded.created_at",
            (tenant_id, room_id, token_hash, token_id, now),
        )

    def delete_share_link(self, tenant_id: str, room_id: str) -> bool:
        """Delete a room's share link; False if there was none."""
        return (
            self.file.execute(
                "DELETE FROM _room_share_links WHERE tenant_id = ? AND room_id = ?",
                (tenant_id, room_id),
            )
            == 1
        )

    # -- ledger ----------------------------------------------------------------

    def append_ledger(self, entries: Sequence[LedgerEntry]) -> None:
        """Append entries atomically (all or none)."""
        with self.file.transaction() as db:
            for entry in entries:
                db.execute(_LEDGER_INSERT, entry.as_params())

    def balance(self, tenant_id: str) -> int:
        """Return a tenant's balance in micro-USD (sum of its ledger)."""
        row = self.file.one(_BALANCE, (tenant_id,))
        return int(row["b"]) if row else 0

    def ledger(self, tenant_id: str | None, limit: int) -> list[Row]:
        """Return the newest ledger rows (of one tenant, or of all)."""
        where, params = ("WHERE l.tenant_id = ?", (tenant_id,)) if tenant_id else ("", ())
        rows = self.file.query(
            "SELECT l.*, t.name AS name FROM _billing_ledger l JOIN _tenants t "
            f"ON t.id = l.tenant_id {where} ORDER BY l.created_at DESC, l.rowid DESC LIMIT ?",
            (*params, limit),
        )
        for row in rows:
            row["metadata"] = json.loads(row["metadata"] or "{}")
        return rows

    def account_totals(self) -> list[Row]:
        """Return per-tenant balance, credit, spent and lifetime held totals."""
        return self.file.query(
            "SELECT t.id AS tenant_id, t.name, t.created_at, t.suspended, "
            "COALESCE(SUM(l.amount_micro_usd), 0) AS balance_micro_usd, "
            "COALESCE(SUM(CASE WHEN l.kind = 'credit_grant' THEN l.amount_micro_usd END), 0) "
            "AS total_credit_micro_usd, "
            "COALESCE(-SUM(CASE WHEN l.kind = 'usage_charge' THEN l.amount_micro_usd END), 0) "
            "AS total_spent_micro_usd, "
            "COALESCE(-SUM(CASE WHEN l.kind = 'usage_hold' THEN l.amount_micro_usd END), 0) "
            "AS total_held_micro_usd "
            "FROM _tenants t LEFT JOIN _billing_ledger l ON l.tenant_id = t.id "
            "GROUP BY t.id ORDER BY t.created_at, t.id"
        )

    def unreleased_holds(self) -> list[Row]:
        """Return ``{tenant_id, run_id, amount}`` of every hold without a release."""
        return self.file.query(
            "SELECT h.tenant_id, h.run_id, -h.amount_micro_usd AS amount "
            "FROM _billing_ledger h WHERE h.kind = 'usage_hold' AND NOT EXISTS ("
            "SELECT 1 FROM _billing_ledger r WHERE r.kind = 'usage_release' "
            "AND r.run_id IS h.run_id AND r.tenant_id = h.tenant_id)"
        )

    def place_hold(self, hold: LedgerEntry, *, require_balance: bool) -> int | None:
        """Append a hold unless the balance is too low; both under one write lock.

        Args:
            hold: The ``usage_hold`` entry (negative amount).
            require_balance: Refuse when the balance is below the hold.

        Returns:
            The balance seen before the hold, or None when refused.
        """
        with self.file.transaction(immediate=True) as db:
            balance = int(db.execute(_BALANCE, (hold.tenant_id,)).fetchone()[0])
            if require_balance and balance < -hold.amount_micro_usd:
                return None
            db.execute(_LEDGER_INSERT, hold.as_params())
            return balance

    # -- credit codes ----------------------------------------------------------

    def insert_credit_code(self, row: Row) -> None:
        """Store a new credit code (by hash)."""
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        self.file.execute(
            f"INSERT INTO _credit_codes ({cols}) VALUES ({marks})", tuple(row.values())
        )

    def list_credit_codes(self, *, include_revoked: bool, limit: int) -> list[Row]:
        """Return credit codes, newest first (never their plaintext)."""
        where = "" if include_revoked else "WHERE revoked_at IS NULL"
        return self.file.query(
            "SELECT code_id, label, credit_micro_usd, max_redemptions, redeemed_count, "
            f"created_at, expires_at, revoked_at FROM _credit_codes {where} "
            "ORDER BY created_at DESC LIMIT ?",
            (limit,),
        )

    def revoke_credit_code(self, code_id: str, now: float) -> bool:
        """Revoke a live code; False if unknown or already revoked."""
        return (
            self.file.execute(
                "UPDATE _credit_codes SET revoked_at = ? WHERE code_id = ? AND revoked_at IS NULL",
                (now, code_id),
            )
            == 1
        )

    def redeem_credit_code(
        self, code_hash: str, tenant_id: str, redemption_id: str, grant: LedgerEntry, now: float
    ) -> Row:
        """Redeem a code for a tenant: check, count, record and credit in one transaction.

        Args:
            code_hash: SHA-256 hex of the presented code.
            tenant_id: The redeeming tenant.
            redemption_id: Id for the redemption row.
            grant: Template ledger entry; its amount is replaced by the code's credit.
            now: Current Unix time.

        Returns:
            The code row as it was before redemption.

        Raises:
            RedeemRefused: invalid, revoked, expired, exhausted or already redeemed.
        """
        with self.file.transaction(immediate=True) as db:
            row = db.execute(
                "SELECT code_id, credit_micro_usd, max_redemptions, redeemed_count, "
                "expires_at, revoked_at FROM _credit_codes WHERE code_hash = ?",
                (code_hash,),
            ).fetchone()
            if row is None:
                raise RedeemRefused("invalid")
            code_id, credit, max_uses, used, expires_at, revoked_at = row
            if revoked_at is not None:
                raise RedeemRefused("revoked")
            if expires_at is not None and expires_at <= now:
                raise RedeemRefused("expired")
            if used >= max_uses:
                raise RedeemRefused("exhausted")
            seen = db.execute(
                "SELECT 1 FROM _credit_code_redemptions WHERE code_id = ? AND tenant_id = ?",
                (code_id, tenant_id),
            ).fetchone()
            if seen is not None:
                raise RedeemRefused("already_redeemed")
            db.execute(
                "UPDATE _credit_codes SET redeemed_count = redeemed_count + 1 WHERE code_id = ?",
                (code_id,),
            )
            db.execute(
                "INSERT INTO _credit_code_redemptions (redemption_id, code_id, tenant_id, "
                "redeemed_at) VALUES (?, ?, ?, ?)",
                (redemption_id, code_id, tenant_id, now),
            )
            if credit > 0:
                entry = dataclasses.replace(
                    grant,
                    amount_micro_usd=credit,
                    metadata={**grant.metadata, "code_id": code_id},
                )
                db.execute(_LEDGER_INSERT, entry.as_params())
            return {"code_id": code_id, "credit_micro_usd": credit}

    # -- prices ----------------------------------------------------------------

    def upsert_price(self, row: Row, *, only_if_absent: bool = False) -> None:
        """Insert or replace one model price row."""
        conflict = (
            "DO NOTHING"
            if only_if_absent
            else (
                "DO UPDATE SET prompt_microusd_per_mtok = excluded.prompt_microusd_per_mtok, "
                "completion_microusd_per_mtok = excluded.completion_microusd_per_mtok, "
                "updated_at = excluded.updated_at, source = excluded.source"
            )
        )
        self.file.execute(
            "INSERT INTO _billing_model_prices (provider, model, prompt_microusd_per_mtok, "
            "completion_microusd_per_mtok, updated_at, source) VALUES (?, ?, ?, ?, ?, ?) "
            f"ON CONFLICT (provider, model) {conflict}",
            (
                row["provider"],
                row["model"],
                row["prompt_microusd_per_mtok"],
                row["completion_microusd_per_mtok"],
                row["updated_at"],
                row.get("source", ""),
            ),
        )

    def get_price(self, provider: str, model: str) -> Row | None:
        """Return the price row for a provider/model or None."""
        return self.file.one(
            "SELECT * FROM _billing_model_prices WHERE provider = ? AND model = ?",
            (provider, model),
        )

    def list_prices(self) -> list[Row]:
        """Return every price row ordered by provider and model."""
        return self.file.query("SELECT * FROM _billing_model_prices ORDER BY provider, model")

    def delete_price(self, provider: str, model: str) -> bool:
        """Delete a price row; False if absent."""
        return (
            self.file.execute(
                "DELETE FROM _billing_model_prices WHERE provider = ? AND model = ?",
                (provider, model),
            )
            == 1
        )


def _parse_constraints(row: Row) -> Row:
    row = dict(row)
    row["constraints"] = json.loads(row.get("constraints") or "{}")
    return row
