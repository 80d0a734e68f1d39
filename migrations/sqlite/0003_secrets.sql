-- Envelope encryption: one data key per tenant, wrapped by a master key that never lives in the
-- database. `master_version` repeats the version recorded inside `wrapped_key` so a rotation can
-- find the rows it still has to re-wrap.
CREATE TABLE tenant_keys (
    tenant_id       BLOB PRIMARY KEY NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    master_version  INTEGER NOT NULL,
    wrapped_key     BLOB NOT NULL,
    created_at      TEXT NOT NULL,
    rotated_at      TEXT
);
CREATE INDEX ix_tenant_keys_master_version ON tenant_keys (master_version);

-- Secret values, encrypted under the tenant's data key; each ciphertext is bound to its tenant
-- and id. Names look like `connection:<uuid>:client_secret`. Reads are audited in audit_log.
CREATE TABLE secrets (
    id          BLOB PRIMARY KEY NOT NULL,
    tenant_id   BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    ciphertext  BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    CONSTRAINT uq_secrets_tenant_id_name UNIQUE (tenant_id, name)
);
