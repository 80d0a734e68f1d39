-- External systems a tenant connects. Secrets live encrypted in `secrets`, never here.
CREATE TABLE connections (
    id               UUID PRIMARY KEY,
    tenant_id        UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind             TEXT NOT NULL CHECK (kind IN ('shopify', 'd365')),
    name             TEXT NOT NULL,
    sandbox          BOOLEAN NOT NULL DEFAULT FALSE,
    settings         JSONB NOT NULL DEFAULT '{}',
    test_status      TEXT NOT NULL DEFAULT 'untested' CHECK (test_status IN ('untested', 'ok', 'failed')),
    test_message     TEXT,
    tested_at        TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    CONSTRAINT uq_connections_tenant_id_name UNIQUE (tenant_id, name)
);
CREATE INDEX ix_connections_tenant ON connections (tenant_id);

-- One Shopify connection + one D365 connection: the unit of billing.
CREATE TABLE pairs (
    id                     UUID PRIMARY KEY,
    tenant_id              UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name                   TEXT NOT NULL,
    shopify_connection_id  UUID NOT NULL REFERENCES connections (id),
    d365_connection_id     UUID NOT NULL REFERENCES connections (id),
    environment            TEXT NOT NULL CHECK (environment IN ('sandbox', 'production')),
    status                 TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'active', 'paused')),
    pause_reason           TEXT,
    flows                  JSONB NOT NULL DEFAULT '[]',
    created_at             TIMESTAMPTZ NOT NULL,
    updated_at             TIMESTAMPTZ NOT NULL,
    CONSTRAINT uq_pairs_tenant_id_name UNIQUE (tenant_id, name)
);
CREATE INDEX ix_pairs_tenant ON pairs (tenant_id);

-- Webhook subscriptions registered at Shopify for an active pair.
CREATE TABLE pair_webhooks (
    pair_id          UUID NOT NULL REFERENCES pairs (id) ON DELETE CASCADE,
    tenant_id        UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    topic            TEXT NOT NULL,
    subscription_id  TEXT NOT NULL,
    callback_url     TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (pair_id, topic)
);

-- Shopify OAuth install attempts: the state nonce is single-use and tied to a tenant.
CREATE TABLE oauth_states (
    state_hash   TEXT PRIMARY KEY NOT NULL,
    tenant_id    UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    shop_domain  TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    used_at      TIMESTAMPTZ
);
