-- One run per (pair, event, flow): the history of processing one event through one flow.
CREATE TABLE runs (
    id               BLOB PRIMARY KEY NOT NULL,
    tenant_id        BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    pair_id          BLOB NOT NULL REFERENCES pairs (id) ON DELETE CASCADE,
    inbox_id         BLOB NOT NULL REFERENCES inbox (id) ON DELETE CASCADE,
    flow             TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'retrying', 'dead')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    mapping_version  TEXT,
    shopify_ref      TEXT,
    d365_ref         TEXT,
    error            TEXT,
    error_class      TEXT,
    input_snapshot   TEXT,
    output_snapshot  TEXT,
    next_attempt_at  TEXT,
    lease_until      TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    CONSTRAINT uq_runs_pair_id_inbox_id_flow UNIQUE (pair_id, inbox_id, flow)
);
CREATE INDEX ix_runs_tenant_created ON runs (tenant_id, created_at, id);
CREATE INDEX ix_runs_due ON runs (status, next_attempt_at);

CREATE TABLE run_attempts (
    run_id       BLOB NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    tenant_id    BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    number       INTEGER NOT NULL,
    started_at   TEXT NOT NULL,
    finished_at  TEXT,
    outcome      TEXT,
    error        TEXT,
    error_class  TEXT,
    PRIMARY KEY (run_id, number)
);

-- Shopify id ↔ D365 key, per pair: what makes re-processing create nothing twice.
CREATE TABLE links (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    pair_id     BLOB NOT NULL REFERENCES pairs (id) ON DELETE CASCADE,
    entity      TEXT NOT NULL,
    shopify_id  TEXT NOT NULL,
    d365_key    TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (pair_id, entity, shopify_id)
);
CREATE INDEX ix_links_d365 ON links (pair_id, entity, d365_key);
