-- Envelope encryption: one data key per tenant, wrapped by a master key that never lives in the
-- database. `master_version` repeats the version recorded inside `wrapped_key` so a rotation can
-- find the rows it still has to re-wrap.
CREATE TABLE tenant_keys (
    tenant_id       UUID PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    master_version  BIGINT NOT NULL,
    wrapped_key     BYTEA NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    rotated_at      TIMESTAMPTZ
);
CREATE INDEX ix_tenant_keys_master_version ON tenant_keys (master_version);

-- Secret values, encrypted under the tenant's data key; each ciphertext is bound to its tenant
-- and id. Names look like `connection:<uuid>:client_secret`. Reads are audited in audit_log.
CREATE TABLE secrets (
    id          UUID PRIMARY KEY,
    tenant_id   UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    ciphertext  BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT uq_secrets_tenant_id_name UNIQUE (tenant_id, name)
);
