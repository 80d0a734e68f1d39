-- Tenants own everything else; later migrations reference this table.
CREATE TABLE tenants (
    id          BLOB PRIMARY KEY NOT NULL,
    slug        TEXT NOT NULL,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    CONSTRAINT uq_tenants_slug UNIQUE (slug)
);

-- Append-only record of security-relevant and operational actions.
CREATE TABLE audit_log (
    id          BLOB PRIMARY KEY NOT NULL,
    tenant_id   BLOB REFERENCES tenants (id) ON DELETE CASCADE,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT '{}',
    created_at  TEXT NOT NULL
);
CREATE INDEX ix_audit_log_tenant_created ON audit_log (tenant_id, created_at);
