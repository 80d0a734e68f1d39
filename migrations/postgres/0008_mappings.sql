-- Per pair and flow: the draft a tenant is editing, and the published versions, which never
-- change once written (a roll-back publishes a copy of the older version as a new one).
CREATE TABLE mapping_drafts (
    tenant_id   UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    pair_id     UUID NOT NULL REFERENCES pairs (id) ON DELETE CASCADE,
    flow        TEXT NOT NULL,
    document    JSONB NOT NULL,
    updated_by  UUID REFERENCES users (id) ON DELETE SET NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (pair_id, flow)
);

CREATE TABLE mapping_versions (
    tenant_id     UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    pair_id       UUID NOT NULL REFERENCES pairs (id) ON DELETE CASCADE,
    flow          TEXT NOT NULL,
    version       BIGINT NOT NULL CHECK (version > 0),
    document      JSONB NOT NULL,
    note          TEXT,
    published_by  UUID REFERENCES users (id) ON DELETE SET NULL,
    published_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (pair_id, flow, version)
);
