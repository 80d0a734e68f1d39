-- Alert rules: one per (pair, kind), created lazily with defaults the first time the evaluator
-- sees a pair; tenants may change thresholds or switch a rule off.
CREATE TABLE alert_rules (
    id                BLOB PRIMARY KEY NOT NULL,
    tenant_id         BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    pair_id           BLOB NOT NULL REFERENCES pairs (id) ON DELETE CASCADE,
    kind              TEXT NOT NULL CHECK (kind IN ('run_dead', 'dead_letters', 'failure_rate', 'backlog_age', 'auth_paused', 'throttling', 'no_events')),
    enabled           BOOLEAN NOT NULL DEFAULT TRUE,
    threshold         DOUBLE PRECISION NOT NULL,
    window_minutes    INTEGER NOT NULL,
    renotify_minutes  INTEGER NOT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    CONSTRAINT uq_alert_rules_pair_id_kind UNIQUE (pair_id, kind)
);
CREATE INDEX ix_alert_rules_tenant ON alert_rules (tenant_id);

-- A rule firing for a pair. At most one open incident per (rule, pair): the partial unique
-- index is what keeps several evaluator processes from opening (and notifying) twice.
CREATE TABLE alert_incidents (
    id                 BLOB PRIMARY KEY NOT NULL,
    tenant_id          BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    rule_id            BLOB NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    pair_id            BLOB NOT NULL REFERENCES pairs (id) ON DELETE CASCADE,
    kind               TEXT NOT NULL,
    summary            TEXT NOT NULL,
    cause              TEXT,
    current_value      DOUBLE PRECISION NOT NULL DEFAULT 0,
    peak_value         DOUBLE PRECISION NOT NULL DEFAULT 0,
    runs_url           TEXT NOT NULL,
    opened_at          TEXT NOT NULL,
    last_notified_at   TEXT,
    notifications      INTEGER NOT NULL DEFAULT 0,
    acknowledged_at    TEXT,
    acknowledged_by    TEXT,
    resolved_at        TEXT,
    resolve_notified   BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE UNIQUE INDEX uq_alert_incidents_open ON alert_incidents (rule_id, pair_id) WHERE resolved_at IS NULL;
CREATE INDEX ix_alert_incidents_tenant ON alert_incidents (tenant_id, opened_at);

-- Where notifications go. Webhook URLs and signing secrets live encrypted in `secrets`.
CREATE TABLE alert_channels (
    id          BLOB PRIMARY KEY NOT NULL,
    tenant_id   BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('email', 'webhook')),
    settings    TEXT NOT NULL DEFAULT '{}',
    enabled     BOOLEAN NOT NULL DEFAULT TRUE,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    CONSTRAINT uq_alert_channels_tenant_id_name UNIQUE (tenant_id, name)
);
CREATE INDEX ix_alert_channels_tenant ON alert_channels (tenant_id);

-- One notification of one incident to one channel: the durable outbox. Any evaluator process
-- claims due rows atomically, sends once, and reschedules failures with backoff, so a failing
-- receiver or a restart loses nothing.
CREATE TABLE alert_deliveries (
    id               BLOB PRIMARY KEY NOT NULL,
    tenant_id        BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    incident_id      BLOB NOT NULL REFERENCES alert_incidents (id) ON DELETE CASCADE,
    channel_id       BLOB NOT NULL REFERENCES alert_channels (id) ON DELETE CASCADE,
    event            TEXT NOT NULL CHECK (event IN ('opened', 'reminder', 'resolved')),
    status           TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX ix_alert_deliveries_due ON alert_deliveries (status, next_attempt_at);
CREATE INDEX ix_alert_deliveries_incident ON alert_deliveries (tenant_id, incident_id);
