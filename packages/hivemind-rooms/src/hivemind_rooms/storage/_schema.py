"""SQLite schemas of the control database and of each tenant database.

Each tuple is the ordered migration list for one kind of file: entry ``i``
moves the schema from version ``i`` to ``i + 1``. Never edit an entry that
has shipped; append a new one. Types follow the embedded mapping of the
Postgres layout: REAL for Unix seconds, INTEGER for micro-USD and booleans,
TEXT for JSON (validated in code), BLOB for binary content. Credentials are
never stored: only their peppered HMAC-SHA256 digests (hex; see
:mod:`hivemind_rooms.credentials`).
"""

from __future__ import annotations

__all__ = ["CONTROL_MIGRATIONS", "TENANT_MIGRATIONS"]

_CONTROL_V1 = """
CREATE TABLE _tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    api_key_hash TEXT NOT NULL,
    db_name TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    suspended INTEGER NOT NULL DEFAULT 0 CHECK (suspended IN (0, 1)),
    owner_pubkey_b64 TEXT
);
CREATE INDEX idx_tenants_api_key_hash ON _tenants (api_key_hash);
CREATE TABLE _capability_tokens (
    token_hash TEXT PRIMARY KEY,
    token_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES _tenants (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('query')),
    label TEXT NOT NULL DEFAULT '',
    constraints TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    revoked_at REAL
);
CREATE INDEX idx_capability_tokens_tenant ON _capability_tokens (tenant_id, token_id);
CREATE TABLE _billing_ledger (
    entry_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES _tenants (id) ON DELETE CASCADE,
    created_at REAL NOT NULL,
    kind TEXT NOT NULL CHECK (
        kind IN ('credit_grant', 'usage_hold', 'usage_release', 'usage_charge')
    ),
    run_id TEXT,
    amount_micro_usd INTEGER NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX idx_billing_ledger_tenant ON _billing_ledger (tenant_id, created_at DESC);
CREATE TRIGGER _billing_ledger_no_update BEFORE UPDATE ON _billing_ledger
BEGIN SELECT RAISE(ABORT, 'the billing ledger is append-only'); END;
CREATE TABLE _credit_codes (
    code_id TEXT PRIMARY KEY,
    code_hash TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL DEFAULT '',
    credit_micro_usd INTEGER NOT NULL CHECK (credit_micro_usd >= 0),
    max_redemptions INTEGER NOT NULL DEFAULT 1 CHECK (max_redemptions >= 1),
    redeemed_count INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    expires_at REAL,
    revoked_at REAL,
    CHECK (redeemed_count <= max_redemptions)
);
CREATE TABLE _credit_code_redemptions (
    redemption_id TEXT PRIMARY KEY,
    code_id TEXT NOT NULL REFERENCES _credit_codes (code_id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL REFERENCES _tenants (id) ON DELETE CASCADE,
    redeemed_at REAL NOT NULL,
    UNIQUE (code_id, tenant_id)
);
CREATE TABLE _billing_model_prices (
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_microusd_per_mtok INTEGER NOT NULL CHECK (prompt_microusd_per_mtok >= 0),
    completion_microusd_per_mtok INTEGER NOT NULL CHECK (completion_microusd_per_mtok >= 0),
    updated_at REAL NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (provider, model)
)
"""

_TENANT_V1 = """
CREATE TABLE _hivemind_agents (
    agent_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    agent_type TEXT NOT NULL DEFAULT 'query'
        CHECK (agent_type IN ('scope', 'query', 'mediator')),
    image TEXT NOT NULL DEFAULT '',
    entrypoint TEXT,
    memory_mb INTEGER NOT NULL DEFAULT 256,
    max_llm_calls INTEGER NOT NULL DEFAULT 20,
    max_tokens INTEGER NOT NULL DEFAULT 100000,
    timeout_seconds INTEGER NOT NULL DEFAULT 120,
    inspection_mode TEXT NOT NULL DEFAULT 'full' CHECK (inspection_mode IN ('full', 'sealed')),
    harness TEXT NOT NULL DEFAULT 'claude_code' CHECK (harness IN ('claude_code', 'hermes')),
    room_id TEXT,
    archive_sha256 TEXT NOT NULL DEFAULT '',
    files_digest TEXT NOT NULL DEFAULT '',
    attested_files_digest TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL
);
CREATE TABLE _hivemind_agent_files (
    agent_id TEXT NOT NULL REFERENCES _hivemind_agents (agent_id) ON DELETE CASCADE,
    file_path TEXT NOT NULL,
    content BLOB,
    ciphertext BLOB,
    seal_mode TEXT NOT NULL DEFAULT '' CHECK (seal_mode IN ('', 'tenant', 'room')),
    room_id TEXT,
    size_bytes INTEGER NOT NULL,
    mode INTEGER NOT NULL DEFAULT 420,
    attestable INTEGER NOT NULL DEFAULT 1 CHECK (attestable IN (0, 1)),
    PRIMARY KEY (agent_id, file_path),
    CHECK ((seal_mode = '') = (content IS NOT NULL))
);
CREATE TABLE _hivemind_tenant_kek (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    wrapped TEXT NOT NULL,
    key_check TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE _hivemind_rooms (
    room_id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    envelope TEXT NOT NULL,
    manifest_hash TEXT NOT NULL,
    scope_agent_id TEXT NOT NULL,
    fixed_query_agent_id TEXT,
    fixed_mediator_agent_id TEXT,
    query_mode TEXT NOT NULL,
    output_visibility TEXT NOT NULL,
    allowed_llm_providers TEXT NOT NULL DEFAULT '[]',
    allow_artifacts INTEGER NOT NULL DEFAULT 1,
    room_policy TEXT NOT NULL DEFAULT '',
    key_check TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL
);
CREATE INDEX idx_rooms_created ON _hivemind_rooms (created_at DESC);
CREATE TABLE _hivemind_room_key_wraps (
    room_id TEXT NOT NULL REFERENCES _hivemind_rooms (room_id) ON DELETE CASCADE,
    wrap_id TEXT NOT NULL,
    wrapped TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (room_id, wrap_id)
);
CREATE TABLE _hivemind_room_vault_items (
    room_id TEXT NOT NULL REFERENCES _hivemind_rooms (room_id) ON DELETE CASCADE,
    item_id TEXT NOT NULL,
    ciphertext BLOB NOT NULL,
    size_bytes INTEGER NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (room_id, item_id)
);
CREATE INDEX idx_vault_items_room ON _hivemind_room_vault_items (room_id, created_at);
CREATE TABLE _hivemind_query_runs (
    run_id TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL DEFAULT '',
    room_id TEXT,
    room_manifest_hash TEXT,
    scope_agent_id TEXT,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'completed', 'failed')),
    error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    prompt TEXT,
    output TEXT,
    attestation TEXT,
    issuer_token_id TEXT,
    payer_tenant_id TEXT,
    payer_token_id TEXT,
    billable_role TEXT,
    billing_provider TEXT,
    billing_model TEXT,
    billing_hold_micro_usd INTEGER NOT NULL DEFAULT 0,
    billing_cost_micro_usd INTEGER NOT NULL DEFAULT 0,
    billing_status TEXT NOT NULL DEFAULT 'unbilled',
    billing_settled_at REAL,
    usage_json TEXT,
    output_visibility TEXT NOT NULL DEFAULT 'owner_and_querier',
    artifacts_enabled INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX idx_runs_room ON _hivemind_query_runs (room_id, created_at DESC)
"""

_CONTROL_V2 = """
CREATE TABLE _room_share_links (
    tenant_id TEXT NOT NULL REFERENCES _tenants (id) ON DELETE CASCADE,
    room_id TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    token_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    rotated_at REAL,
    PRIMARY KEY (tenant_id, room_id)
)
"""

# Revocation is final and now destroys the room key's wraps; rooms revoked
# before that still hold theirs, so drop them once.
_TENANT_V2 = """
DELETE FROM _hivemind_room_key_wraps
WHERE room_id IN (SELECT room_id FROM _hivemind_rooms WHERE revoked_at IS NOT NULL)
"""

# Invites may carry an expiry (Unix seconds); NULL keeps the old meaning, no expiry.
_CONTROL_V3 = """
ALTER TABLE _capability_tokens ADD COLUMN expires_at REAL
"""

CONTROL_MIGRATIONS: tuple[str, ...] = (_CONTROL_V1, _CONTROL_V2, _CONTROL_V3)
TENANT_MIGRATIONS: tuple[str, ...] = (_TENANT_V1, _TENANT_V2)
