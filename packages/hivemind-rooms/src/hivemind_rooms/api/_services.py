"""The resources one app instance works with, opened in the lifespan."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any, final

from ..billing import Billing
from ..credentials import CredentialHasher
from ..settings import Settings
from ..storage import Storage
from ..tenants import Tenants, load_or_create_pepper
from ..vault import DEFAULT_KDF, KdfParams, KeyScope, VaultKeyring
from ._ratelimit import TokenBucket

__all__ = ["Services"]


@final
@dataclasses.dataclass
class Services:
    """Everything a request handler needs, reached as ``request.app.state.services``.

    Attributes:
        settings: The configuration.
        storage: Control and tenant databases.
        hasher: Keyed digests of credentials.
        billing: Ledger and credit codes.
        tenants: Tenants and bearer authentication.
        keyring: Opened room and tenant keys (memory only: empty after a restart).
        kdf: Key-wrapping cost parameters.
        attestation: The attestation service, when available.
        signups: Rate limit of self-serve signups (per process).
        clock: Current Unix time.
    """

    settings: Settings
    storage: Storage
    hasher: CredentialHasher
    billing: Billing
    tenants: Tenants
    keyring: VaultKeyring
    kdf: KdfParams
    attestation: Any = None
    signups: TokenBucket = dataclasses.field(default_factory=lambda: TokenBucket(30))
    clock: Callable[[], float] = time.time

    @classmethod
    def open(
        cls, settings: Settings, *, kdf: KdfParams = DEFAULT_KDF, attestation: Any = None
    ) -> Services:
        """Open the databases under ``settings.data_dir`` and build the services."""
        storage = Storage(settings.data_dir)
        hasher = CredentialHasher(load_or_create_pepper(settings.data_dir))
        billing = Billing(storage.control, hasher, enforce_credits=settings.enforce_credits)
        billing.seed_prices()
        # No run survives a restart: holds left open by interrupted runs are returned.
        billing.release_orphan_holds()
        tenants = Tenants(storage, hasher, billing)
        return cls(
            settings=settings,
            storage=storage,
            hasher=hasher,
            billing=billing,
            tenants=tenants,
            keyring=VaultKeyring(),
            kdf=kdf,
            attestation=attestation,
            signups=TokenBucket(settings.signups_per_minute),
        )

    def forget_tenant(self, tenant_id: str) -> None:
        """Drop every opened key of a tenant (its seal and all its rooms)."""
        if self.storage.control.get_tenant(tenant_id) is None:
            return
        self.keyring.forget(KeyScope.tenant(tenant_id))
        for room in self.storage.tenant(tenant_id).list_rooms(1_000_000):
            self.keyring.forget(KeyScope.room(tenant_id, room["room_id"]))

    def clear_tenant_seal(self, tenant_id: str) -> int:
        """Delete a tenant's seal so the next owner request starts a new one."""
        self.keyring.forget(KeyScope.tenant(tenant_id))
        return self.storage.tenant(tenant_id).delete_tenant_kek()

    def close(self) -> None:
        """Close the databases."""
        self.storage.close()
