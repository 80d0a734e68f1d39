-- Every incoming event, stored before it is acknowledged: the row, not the queue, is the truth.
CREATE TABLE inbox (
    id             UUID PRIMARY KEY,
    tenant_id      UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    connection_id  UUID NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    webhook_id     TEXT NOT NULL,
    topic          TEXT NOT NULL,
    shop_domain    TEXT NOT NULL,
    api_version    TEXT NOT NULL,
    event_id       TEXT,
    triggered_at   TEXT,
    payload        BYTEA NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('received', 'held', 'failed', 'done')),
    error          TEXT,
    received_at    TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    CONSTRAINT uq_inbox_connection_id_webhook_id UNIQUE (connection_id, webhook_id)
);
CREATE INDEX ix_inbox_tenant_received ON inbox (tenant_id, received_at);
CREATE INDEX ix_inbox_status ON inbox (status, received_at);
