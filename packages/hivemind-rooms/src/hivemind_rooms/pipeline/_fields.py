"""Run prompt, output and error sealed at rest under the room key.

Theory of operation. A run's question and its answer are room data, like
vault items and artifacts, so the run row keeps them only as vault blobs:
:func:`~hivemind_rooms.vault.seal_blob` under the room key, with associated
data binding the format version, tenant, room, run id and the field name.
The stored column text is::

    "hmsealed:1:" || base64(nonce (24) || XChaCha20-Poly1305 ciphertext || tag (16))

A value copied to another run, another room or another column, or damaged
in any way, fails with the vault's opaque
:class:`~hivemind_rooms.vault.VaultDecryptError`.

Text without the prefix is stored in clear on purpose and only for messages
the service writes itself and that carry nothing of the room (a run failed
by a restart, a full queue, a room closed under a running run, the receipt
of an agent upload): they are written where no room key is at hand. Rows a
version before sealing left in clear are sealed by :func:`seal_clear_runs`
(the engine's sweep) as soon as their room key is open in the process.

The run attestation is signed over the plaintext before it is sealed (its
prompt and output hashes stay verifiable against the opened text), and
usage holds counts, models and timings only, never data, so both stay
readable as metadata.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, Final

from ..credentials import Rng
from ..vault import KeyScope, SecretKey, VaultDecryptError, VaultLocked, open_blob, seal_blob

__all__ = [
    "ROOM_CLOSED",
    "SEALED_FIELDS",
    "is_sealed_text",
    "open_run_text",
    "seal_clear_runs",
    "seal_run_text",
    "sealed_fields",
]

FIELD_FORMAT: Final = 1
SEALED_FIELDS: Final = ("prompt", "output", "error")
ROOM_CLOSED: Final = "the room key was closed before the run's result could be stored"
_PREFIX: Final = f"hmsealed:{FIELD_FORMAT}:"
_LABEL: Final = "run-field"


def _ids(run_id: str, field: str) -> tuple[str, ...]:
    if field not in SEALED_FIELDS:
        raise ValueError(f"not a sealed run field: {field!r}")
    return (f"format-{FIELD_FORMAT}", run_id, field)


def is_sealed_text(value: Any) -> bool:
    """Whether a stored column value is a sealed run field."""
    return isinstance(value, str) and value.startswith(_PREFIX)


def seal_run_text(
    key: SecretKey, scope: KeyScope, run_id: str, field: str, text: str,
    *, rng: Rng | None = None,
) -> str:  # fmt: skip
    """Seal one text field of a run for ``scope`` (tenant and room).

    Returns:
        The column text: the format prefix and the base64 vault blob.
    """
    blob = seal_blob(key, scope, _LABEL, _ids(run_id, field), text.encode("utf-8"), rng=rng)
    return _PREFIX + base64.b64encode(blob).decode("ascii")


def open_run_text(key: SecretKey, scope: KeyScope, run_id: str, field: str, stored: str) -> str:
    """Open a field sealed by :func:`seal_run_text` with the same scope, run and field.

    Raises:
        VaultDecryptError: not sealed text, wrong key, tenant, room, run or
            field, or any damage (no detail given).
    """
    if not is_sealed_text(stored):
        raise VaultDecryptError()
    try:
        blob = base64.b64decode(stored[len(_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise VaultDecryptError() from None
    plain = open_blob(key, scope, _LABEL, _ids(run_id, field), blob)
    try:
        return plain.decode("utf-8")
    except UnicodeDecodeError:  # pragma: no cover - authenticated bytes are ours
        raise VaultDecryptError() from None


def sealed_fields(row: Mapping[str, Any]) -> list[str]:
    """The fields of a stored run row that are sealed."""
    return [f for f in SEALED_FIELDS if is_sealed_text(row.get(f))]


def seal_clear_runs(services: Any) -> int:
    """Seal the clear prompt, output and error of finished runs whose room key is open.

    Rows of rooms not open in this process are left for a later sweep.

    Returns:
        The number of runs sealed.
    """
    count = 0
    for tenant in services.storage.control.list_tenants():
        store = services.storage.tenant(tenant["id"])
        for row in store.file.query(_CLEAR_ROWS):
            count += _seal_row(services, store, str(tenant["id"]), row)
    return count


_CLEAR_ROWS: Final = (
    "SELECT run_id, room_id, prompt, output, error FROM _hivemind_query_runs "
    "WHERE room_id IS NOT NULL AND status IN ('completed', 'failed') AND ("
    + " OR ".join(f"({f} IS NOT NULL AND {f} NOT LIKE '{_PREFIX}%')" for f in SEALED_FIELDS)
    + ")"
)


def _seal_row(services: Any, store: Any, tenant_id: str, row: Mapping[str, Any]) -> int:
    scope = KeyScope.room(tenant_id, str(row["room_id"]))
    try:
        key = services.keyring.get(scope)
    except VaultLocked:
        return 0
    run_id = str(row["run_id"])
    fields = {
        f: seal_run_text(key, scope, run_id, f, str(row[f]))
        for f in SEALED_FIELDS
        if row[f] is not None and not is_sealed_text(row[f])
    }
    sets = ", ".join(f"{f} = ?" for f in fields)
    # compare-and-set: a row changed meanwhile (scrubbed) is left alone
    same = " AND ".join(f"{f} = ?" for f in fields)
    return int(
        store.file.execute(
            f"UPDATE _hivemind_query_runs SET {sets} WHERE run_id = ? AND {same}",
            (*fields.values(), run_id, *(row[f] for f in fields)),
        )
    )
