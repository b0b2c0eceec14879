"""The storage interface: what the service needs from a database backend.

Theory of operation. Everything above ``storage`` talks to these two
protocols and never writes SQL, so another backend (a Postgres deployment,
say) only has to provide the same operations with the same atomicity: each
method is one transaction, and :meth:`ControlStoreProtocol.place_hold` and
:meth:`ControlStoreProtocol.redeem_credit_code` must make their check and
their write indivisible against concurrent callers in any process. The
SQLite classes implement them; a test keeps the protocols and the classes in
step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from ._control import LedgerEntry

__all__ = ["ControlStoreProtocol", "TenantStoreProtocol"]

Row = dict[str, Any]


@runtime_checkable
class ControlStoreProtocol(Protocol):
    """Operations on the control database, whatever the backend."""

    def account_totals(self) -> list[Row]:
        """Return per-tenant balance, credit, spent and lifetime held totals."""
        ...

    def append_ledger(self, entries: Sequence[LedgerEntry]) -> None:
        """Append entries atomically (all or none)."""
        ...

    def balance(self, tenant_id: str) -> int:
        """Return a tenant's balance in micro-USD (sum of its ledger)."""
        ...

    def close(self) -> None:
        """Close the underlying file."""
        ...

    def delete_price(self, provider: str, model: str) -> bool:
        """Delete a price row; False if absent."""
        ...

    def delete_share_link(self, tenant_id: str, room_id: str) -> bool:
        """Delete a room's share link; False if there was none."""
        ...

    def delete_tenant(self, tenant_id: str) -> bool:
        """Delete a tenant and (by cascade) its tokens, ledger and redemptions."""
        ...

    def get_price(self, provider: str, model: str) -> Row | None:
        """Return the price row for a provider/model or None."""
        ...

    def get_share_link(self, tenant_id: str, room_id: str) -> Row | None:
        """Return a room's share link row (digest only) or None."""
        ...

    def get_tenant(self, tenant_id: str) -> Row | None:
        """Return the tenant row or None."""
        ...

    def insert_credit_code(self, row: Row) -> None:
        """Store a new credit code (by hash)."""
        ...

    def insert_tenant(self, tenant_id: str, name: str, key_hash: str, now: float) -> Row:
        """Create a tenant row and return it."""
        ...

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
        ...

    def ledger(self, tenant_id: str | None, limit: int) -> list[Row]:
        """Return the newest ledger rows (of one tenant, or of all)."""
        ...

    def list_credit_codes(self, *, include_revoked: bool, limit: int) -> list[Row]:
        """Return credit codes, newest first (never their plaintext)."""
        ...

    def list_prices(self) -> list[Row]:
        """Return every price row ordered by provider and model."""
        ...

    def list_tenants(self) -> list[Row]:
        """Return every tenant, oldest first."""
        ...

    def list_tokens(self, tenant_id: str) -> list[Row]:
        """Return a tenant's invite tokens, newest first (revoked ones included)."""
        ...

    def place_hold(self, hold: LedgerEntry, *, require_balance: bool) -> int | None:
        """Append a hold unless the balance is too low; both under one write lock."""
        ...

    def put_share_link(
        self, tenant_id: str, room_id: str, token_hash: str, token_id: str, now: float
    ) -> None:
        """Create a room's share link, or replace its token (rotation)."""
        ...

    def redeem_credit_code(
        self, code_hash: str, tenant_id: str, redemption_id: str, grant: LedgerEntry, now: float
    ) -> Row:
        """Redeem a code for a tenant: check, count, record and credit in one transaction."""
        ...

    def rename_tenant(self, tenant_id: str, name: str) -> bool:
        """Change a tenant's display name; False if the tenant is unknown."""
        ...

    def revoke_all_tokens(self, tenant_id: str, now: float, *, room_id: str = "") -> int:
        """Revoke every live token of a tenant (or only those bound to ``room_id``)."""
        ...

    def revoke_credit_code(self, code_id: str, now: float) -> bool:
        """Revoke a live code; False if unknown or already revoked."""
        ...

    def revoke_tokens(self, tenant_id: str, token_hashes: Sequence[str], now: float) -> int:
        """Revoke the given live tokens of a tenant; return how many changed."""
        ...

    def set_owner_pubkey(self, tenant_id: str, pubkey_b64: str) -> bool:
        """Register the tenant's owner signing key once; True if it is now the stored key."""
        ...

    def set_tenant_key_hash(self, tenant_id: str, key_hash: str) -> bool:
        """Replace a tenant's owner key hash; False if the tenant is unknown."""
        ...

    def share_link_by_hash(self, token_hash: str) -> Row | None:
        """Return the share link whose token has this digest, or None."""
        ...

    def tenant_by_key_hash(self, key_hash: str) -> Row | None:
        """Return the tenant whose owner key hashes to ``key_hash``."""
        ...

    def tenant_name_taken(self, name: str, *, except_id: str = "") -> bool:
        """Tell whether another tenant already uses ``name``."""
        ...

    def token_by_hash(self, token_hash: str) -> Row | None:
        """Return the token row (with ``constraints`` parsed) or None."""
        ...

    def tokens_with_id_prefix(self, tenant_id: str, prefix: str) -> list[Row]:
        """Return a tenant's tokens whose public id starts with ``prefix``."""
        ...

    def unreleased_holds(self) -> list[Row]:
        """Return ``{tenant_id, run_id, amount}`` of every hold without a release."""
        ...

    def upsert_price(self, row: Row, *, only_if_absent: bool = False) -> None:
        """Insert or replace one model price row."""
        ...


@runtime_checkable
class TenantStoreProtocol(Protocol):
    """Operations on one tenant's database, whatever the backend."""

    def agent_file(self, agent_id: str, path: str) -> Row | None:
        """Return one stored file row (content or ciphertext) or None."""
        ...

    def agent_files(self, agent_id: str) -> list[Row]:
        """Return file metadata (no content) ordered by path."""
        ...

    def close(self) -> None:
        """Close the underlying file."""
        ...

    def count_items(self, room_id: str) -> int:
        """Return the number of vault items of a room."""
        ...

    def delete_agent(self, agent_id: str) -> bool:
        """Delete an agent and its files; False if unknown."""
        ...

    def delete_tenant_kek(self) -> int:
        """Delete the tenant-seal wrap row; return rows deleted."""
        ...

    def delete_wrap(self, room_id: str, wrap_id: str) -> bool:
        """Delete one wrap of a room; False if absent."""
        ...

    def get_agent(self, agent_id: str) -> Row | None:
        """Return an agent row or None."""
        ...

    def get_room(self, room_id: str) -> Row | None:
        """Return a room row or None."""
        ...

    def get_run(self, run_id: str) -> Row | None:
        """Return a run row or None."""
        ...

    def get_tenant_kek(self) -> Row | None:
        """Return the tenant-seal wrap row or None."""
        ...

    def get_wrap(self, room_id: str, wrap_id: str) -> str | None:
        """Return one wrap's stored text or None."""
        ...

    def insert_agent(self, agent: Row, files: Sequence[Row]) -> None:
        """Store an agent and all its files in one transaction."""
        ...

    def insert_item(self, row: Row) -> None:
        """Store one sealed vault item."""
        ...

    def insert_room(self, room: Row, wraps: Sequence[tuple[str, str]], now: float) -> None:
        """Store a room row and its initial key wraps in one transaction."""
        ...

    def insert_run(self, row: Row) -> None:
        """Store a run row."""
        ...

    def list_agents(self, agent_type: str | None = None) -> list[Row]:
        """Return agents newest first, optionally of one type."""
        ...

    def list_items(self, room_id: str) -> list[Row]:
        """Return a room's sealed items in creation order."""
        ...

    def list_rooms(self, limit: int) -> list[Row]:
        """Return rooms newest first."""
        ...

    def list_runs(self, limit: int, *, issuer_token_id: str | None = None) -> list[Row]:
        """Return runs newest first, optionally only those of one invite token."""
        ...

    def put_tenant_kek(self, wrapped: str, key_check: str, now: float) -> bool:
        """Insert the tenant-seal wrap row unless one exists; True if inserted."""
        ...

    def put_wrap(self, room_id: str, wrap_id: str, wrapped: str, now: float) -> None:
        """Insert or replace one key wrap of a room."""
        ...

    def replace_owner_wraps(self, tenant_wrap: str | None, room_wraps: Row, now: float) -> None:
        """Replace the tenant-seal wrap and the rooms' owner wraps in one transaction."""
        ...

    def revoke_room(self, room_id: str, now: float) -> bool:
        """Mark a live room revoked and delete every wrap of its key (final).

        False if unknown or already revoked.
        """
        ...

    def rooms_with_wrap(self, wrap_id: str) -> list[str]:
        """Return the room ids that hold a wrap with this id."""
        ...

    def table_columns(self, table: str) -> list[Row]:
        """Return ``PRAGMA table_info`` rows of a user table."""
        ...

    def update_room(self, room_id: str, fields: Row) -> bool:
        """Update columns of a room row; False if unknown."""
        ...

    def user_tables(self) -> list[str]:
        """Return the names of the owner's own tables (internal ones hidden)."""
        ...

    def wrap_ids(self, room_id: str) -> list[str]:
        """Return the wrap ids of a room."""
        ...
