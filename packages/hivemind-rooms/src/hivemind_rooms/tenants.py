"""Tenants, owner keys, invite tokens and who a bearer is.

A bearer is classified by its prefix (``hmk_`` owner key, ``hmq_`` invite)
and looked up by its keyed digest only; the plaintext is never stored. An
invite's constraints bind it to one room: every room route compares the
path's room id with ``Caller.room_id`` before touching data.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, final

from . import credentials
from .billing import Billing, BillingError
from .credentials import CredentialError, CredentialHasher, CredentialKind
from .storage import Storage, StorageError

__all__ = [
    "INVITE_EXPIRY_RANGE",
    "Caller",
    "TenantError",
    "Tenants",
    "load_or_create_pepper",
]

_NAME_MAX = 200
_PEPPER_FILE = "credential-pepper.key"

INVITE_EXPIRY_RANGE = (60, 365 * 86400)
"""Bounds (seconds, inclusive) of an invite's optional lifetime."""


class TenantError(Exception):
    """A tenant operation is refused; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@final
@dataclasses.dataclass(frozen=True)
class Caller:
    """An authenticated bearer.

    Attributes:
        role: ``owner`` (``hmk_``), ``query`` (``hmq_`` invite) or ``share`` (``hms_``).
        tenant_id: The tenant the bearer belongs to.
        tenant_name: The tenant's display name.
        token_id: Public short id of the bearer (first 12 hex of its SHA-256).
        constraints: Invite constraints (empty for owners).
        bearer: The presented credential, needed to open sealed material.
    """

    role: Literal["owner", "query", "share"]
    tenant_id: str
    tenant_name: str
    token_id: str
    constraints: dict[str, Any] = dataclasses.field(default_factory=dict)
    bearer: str = dataclasses.field(default="", repr=False)

    @property
    def room_id(self) -> str:
        """The room an invite or share link is bound to ("" for owners)."""
        return str(self.constraints.get("room_id", ""))


def load_or_create_pepper(data_dir: Path) -> bytes:
    """Read the credential pepper from the data directory, creating it once.

    The pepper is kept in its own file (mode 0600), outside the databases, so a
    copied database alone cannot be used to check guessed credentials.

    Args:
        data_dir: The service data directory.

    Returns:
        32 secret bytes.
    """
    path = data_dir / _PEPPER_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pepper = bytes.fromhex(path.read_text().strip())
        if len(pepper) < 32:
            raise CredentialError(f"{path} holds a pepper shorter than 32 bytes") from None
        return pepper
    pepper = CredentialHasher.generate_pepper()
    with os.fdopen(fd, "w") as handle:
        handle.write(pepper.hex() + "\n")
    return pepper


def clean_name(name: Any) -> str:
    """Validate and strip a tenant display name.

    Raises:
        TenantError: not a non-blank string of at most 200 characters (400).
    """
    if not isinstance(name, str) or not name.strip():
        raise TenantError(400, "name must be a non-empty string")
    if len(name.strip()) > _NAME_MAX:
        raise TenantError(400, f"name must be at most {_NAME_MAX} characters")
    return name.strip()


@final
class Tenants:
    """Tenant provisioning, authentication and credential lifecycle.

    Args:
        storage: The databases.
        hasher: Keyed digest of credentials.
        billing: Used by signup to redeem the starter credit code.
        clock: Returns the current Unix time.
    """

    def __init__(
        self,
        storage: Storage,
        hasher: CredentialHasher,
        billing: Billing,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._storage = storage
        self._control = storage.control
        self._hasher = hasher
        self._billing = billing
        self._clock = clock

    # -- provisioning ------------------------------------------------------------

    def provision(self, name: Any, *, allow_duplicate_name: bool = False) -> dict[str, Any]:
        """Create a tenant with a fresh owner key (returned once, never stored).

        Raises:
            TenantError: bad name (400) or duplicate name (409).
        """
        name = clean_name(name)
        if not allow_duplicate_name and self._control.tenant_name_taken(name):
            raise TenantError(409, f"a tenant named {name!r} already exists")
        tenant_id = credentials.new_tenant_id()
        api_key = credentials.new_credential(CredentialKind.OWNER)
        row = self._control.insert_tenant(
            tenant_id, name, self._hasher.digest(api_key), self._clock()
        )
        self._storage.tenant(tenant_id)
        return {"tenant_id": tenant_id, "api_key": api_key, "db_name": row["db_name"], "name": name}

    def register(
        self,
        name: Any,
        *,
        tenant_id: str | None,
        api_key: str | None,
        allow_duplicate_name: bool = False,
    ) -> dict[str, Any]:
        """Register a tenant with a chosen id (adopting an existing database file).

        Raises:
            TenantError: bad id, key or name (400), duplicate name or id (409).
        """
        name = clean_name(name)
        tenant_id = tenant_id or credentials.new_tenant_id()
        try:
            path = self._storage.tenant_path(tenant_id)
        except StorageError:
            raise TenantError(400, "tenant_id must be 't_' followed by 12 lowercase hex") from None
        if api_key is not None:
            try:
                if credentials.credential_kind(api_key) is not CredentialKind.OWNER:
                    raise CredentialError("not an owner key")
            except CredentialError:
                raise TenantError(400, "api_key must be a well-formed hmk_ key") from None
        if self._control.get_tenant(tenant_id) is not None:
            raise TenantError(409, "a tenant with this id already exists")
        if not allow_duplicate_name and self._control.tenant_name_taken(name):
            raise TenantError(409, f"a tenant named {name!r} already exists")
        api_key = api_key or credentials.new_credential(CredentialKind.OWNER)
        adopted = path.exists()
        row = self._control.insert_tenant(
            tenant_id, name, self._hasher.digest(api_key), self._clock()
        )
        self._storage.tenant(tenant_id)
        return {
            "tenant_id": tenant_id,
            "api_key": api_key,
            "db_name": row["db_name"],
            "name": name,
            "adopted": adopted,
        }

    def signup(self, name: Any, starter_code: str) -> dict[str, Any]:
        """Self-serve signup: provision, then redeem the starter code if configured."""
        created = self.provision(name, allow_duplicate_name=True)
        starter = 0
        if starter_code:
            try:
                starter = self._billing.redeem(created["tenant_id"], starter_code)[
                    "credit_micro_usd"
                ]
            except BillingError:
                starter = 0
        return {
            "tenant_id": created["tenant_id"],
            "name": created["name"],
            "api_key": created["api_key"],
            "starter_credit_micro_usd": starter,
            "balance_micro_usd": self._billing.balance(created["tenant_id"]),
        }

    def get(self, tenant_id: str) -> dict[str, Any]:
        """Return a tenant row.

        Raises:
            TenantError: unknown tenant (404).
        """
        row = self._control.get_tenant(tenant_id)
        if row is None:
            raise TenantError(404, "tenant not found")
        return row

    def list(self) -> list[dict[str, Any]]:
        """Return the admin view of every tenant (no key material)."""
        return [
            {
                "id": r["id"],
                "name": r["name"],
                "db_name": r["db_name"],
                "created_at": r["created_at"],
                "suspended": bool(r["suspended"]),
            }
            for r in self._control.list_tenants()
        ]

    def rename(self, tenant_id: str, name: Any, *, allow_duplicate_name: bool) -> dict[str, Any]:
        """Rename a tenant.

        Raises:
            TenantError: bad name (400), unknown tenant (404), duplicate (409).
        """
        name = clean_name(name)
        self.get(tenant_id)
        taken = self._control.tenant_name_taken(name, except_id=tenant_id)
        if taken and not allow_duplicate_name:
            raise TenantError(409, f"a tenant named {name!r} already exists")
        self._control.rename_tenant(tenant_id, name)
        return {k: v for k, v in self.get(tenant_id).items() if k != "api_key_hash"}

    def delete(self, tenant_id: str) -> None:
        """Delete a tenant: its control rows (by cascade) and its database file.

        Raises:
            TenantError: unknown tenant (404).
        """
        if not self._control.delete_tenant(tenant_id):
            raise TenantError(404, "tenant not found")
        self._storage.drop_tenant(tenant_id)

    # -- authentication ----------------------------------------------------------

    def authenticate(self, bearer: str) -> Caller | None:
        """Resolve a bearer to a caller; None when unknown, revoked or suspended."""
        try:
            kind = credentials.credential_kind(bearer)
        except CredentialError:
            return None
        if kind is CredentialKind.OWNER:
            return self._owner(bearer)
        if kind is CredentialKind.INVITE:
            return self._invite(bearer)
        if kind is CredentialKind.SHARE:
            return self._share(bearer)
        return None

    def _owner(self, bearer: str) -> Caller | None:
        tenant = self._control.tenant_by_key_hash(self._hasher.digest(bearer))
        if tenant is None or tenant["suspended"]:
            return None
        return Caller(
            role="owner",
            tenant_id=tenant["id"],
            tenant_name=tenant["name"],
            token_id=credentials.token_id(bearer),
            bearer=bearer,
        )

    def _invite(self, bearer: str) -> Caller | None:
        token = self._control.token_by_hash(self._hasher.digest(bearer))
        if token is None or token["revoked_at"] is not None:
            return None
        expires_at = token["expires_at"]
        if expires_at is not None and self._clock() >= expires_at:
            return None  # an expired invite is refused exactly like a revoked one
        tenant = self._control.get_tenant(token["tenant_id"])
        if tenant is None or tenant["suspended"]:
            return None
        return Caller(
            role="query",
            tenant_id=tenant["id"],
            tenant_name=tenant["name"],
            token_id=token["token_id"],
            constraints=token["constraints"],
            bearer=bearer,
        )

    def _share(self, bearer: str) -> Caller | None:
        link = self._control.share_link_by_hash(self._hasher.digest(bearer))
        if link is None:
            return None
        tenant = self._control.get_tenant(link["tenant_id"])
        if tenant is None or tenant["suspended"]:
            return None
        return Caller(
            role="share",
            tenant_id=tenant["id"],
            tenant_name=tenant["name"],
            token_id=link["token_id"],
            constraints={"room_id": link["room_id"]},
            bearer=bearer,
        )

    def payer(self, key: str) -> dict[str, Any] | None:
        """Resolve an ``X-Hivemind-Api-Key`` payer key to its tenant, or None."""
        caller = self._owner(key) if key.startswith(CredentialKind.OWNER.value) else None
        if caller is None:
            return None
        return {"tenant_id": caller.tenant_id, "payer_token_id": caller.token_id}

    # -- keys and tokens -----------------------------------------------------------

    def replace_key(self, tenant_id: str) -> str:
        """Give a tenant a fresh owner key; the old one stops working at once.

        Returns:
            The new plaintext key (shown once).

        Raises:
            TenantError: unknown tenant (404).
        """
        api_key = credentials.new_credential(CredentialKind.OWNER)
        if not self._control.set_tenant_key_hash(tenant_id, self._hasher.digest(api_key)):
            raise TenantError(404, "tenant not found")
        return api_key

    def mint_invite(
        self,
        tenant_id: str,
        *,
        label: str,
        constraints: dict[str, Any],
        expires_in: int | None = None,
    ) -> tuple[str, str, float | None]:
        """Mint an invite token bound by ``constraints`` (must name a ``room_id``).

        Args:
            tenant_id: The owning tenant.
            label: Display label.
            constraints: Must name the ``room_id`` the invite is bound to.
            expires_in: Lifetime in seconds, within :data:`INVITE_EXPIRY_RANGE`;
                None mints an invite that never expires.

        Returns:
            ``(token, token_id, expires_at)``; the token is shown once and never
            stored; ``expires_at`` is Unix seconds or None.

        Raises:
            TenantError: no room (400); lifetime out of range (422).
        """
        if not constraints.get("room_id"):
            raise TenantError(400, "an invite must be bound to a room")
        low, high = INVITE_EXPIRY_RANGE
        if expires_in is not None and not low <= expires_in <= high:
            raise TenantError(422, f"expires_in_seconds must be between {low} and {high}")
        now = self._clock()
        expires_at = None if expires_in is None else now + expires_in
        token = credentials.new_credential(CredentialKind.INVITE)
        tid = credentials.token_id(token)
        self._control.insert_token(
            self._hasher.digest(token), tid, tenant_id, label, constraints, now, expires_at
        )
        return token, tid, expires_at

    def list_tokens(self, tenant_id: str) -> list[dict[str, Any]]:
        """Return a tenant's invite tokens (revoked ones included), no secrets."""
        keys = (
            "token_id",
            "kind",
            "label",
            "constraints",
            "created_at",
            "expires_at",
            "revoked_at",
        )
        return [{k: r[k] for k in keys} for r in self._control.list_tokens(tenant_id)]

    def revoke_token(self, tenant_id: str, prefix: str) -> str:
        """Revoke the one live token whose id starts with ``prefix`` (≥ 6 hex).

        Returns:
            The full token id.

        Raises:
            TenantError: bad prefix or ambiguous (400); no match (404).
        """
        if not (6 <= len(prefix) <= 12) or any(c not in "0123456789abcdef" for c in prefix):
            raise TenantError(400, "token id prefix must be 6 to 12 lowercase hex characters")
        rows = [
            r
            for r in self._control.tokens_with_id_prefix(tenant_id, prefix)
            if r["revoked_at"] is None
        ]
        if not rows:
            raise TenantError(404, "token not found")
        if len(rows) > 1:
            raise TenantError(400, "token id prefix is ambiguous")
        self._control.revoke_tokens(tenant_id, [rows[0]["token_hash"]], self._clock())
        return str(rows[0]["token_id"])

    def revoke_room_tokens(self, tenant_id: str, room_id: str) -> int:
        """Revoke every live invite bound to a room; return how many."""
        return self._control.revoke_all_tokens(tenant_id, self._clock(), room_id=room_id)

    def revoke_all_tokens(self, tenant_id: str) -> int:
        """Revoke every live invite of a tenant; return how many."""
        return self._control.revoke_all_tokens(tenant_id, self._clock())
