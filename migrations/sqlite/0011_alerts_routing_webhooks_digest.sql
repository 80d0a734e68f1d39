-- Alerting, continued: the webhook-subscription rule, per-rule channel routing, the results of
-- the periodic Shopify webhook-subscription check, and the daily digest.

-- A new rule kind: a Shopify webhook subscription the pair needs is missing or was deleted.
-- SQLite cannot change a CHECK constraint in place, and migrations run inside a transaction
-- where `PRAGMA foreign_keys = OFF` does nothing, so dropping `alert_rules` would cascade to
-- the incidents. Instead the three alert tables are renamed (their references follow the new
-- names), rebuilt under their own names and filled, and the old ones dropped children first,
-- when nothing references them any more.
DROP INDEX ix_alert_rules_tenant;
DROP INDEX uq_alert_incidents_open;
DROP INDEX ix_alert_incidents_tenant;
DROP INDEX ix_alert_deliveries_due;
DROP INDEX ix_alert_deliveries_incident;
ALTER TABLE alert_deliveries RENAME TO alert_deliveries_0009;
ALTER TABLE alert_incidents RENAME TO alert_incidents_0009;
ALTER TABLE alert_rules RENAME TO alert_rules_0009;

CREATE TABLE alert_rules (
    id                BLOB PRIMARY KEY NOT NULL,
    tenant_id         BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    pair_id           BLOB NOT NULL REFERENCES pairs (id) ON DELETE CASCADE,
    kind              TEXT NOT NULL CHECK (kind IN ('run_dead', 'dead_letters', 'failure_rate', 'backlog_age', 'auth_paused', 'throttling', 'no_events', 'webhook_missing')),
    enabled           BOOLEAN NOT NULL DEFAULT TRUE,
    threshold         DOUBLE PRECISION NOT NULL,
    window_minutes    INTEGER NOT NULL,
    renotify_minutes  INTEGER NOT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    CONSTRAINT uq_alert_rules_pair_id_kind UNIQUE (pair_id, kind)
);
INSERT INTO alert_rules (id, tenant_id, pair_id, kind, enabled, threshold, window_minutes, renotify_minutes, created_at, updated_at)
    SELECT id, tenant_id, pair_id, kind, enabled, threshold, window_minutes, renotify_minutes, created_at, updated_at FROM alert_rules_0009;

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
INSERT INTO alert_incidents (id, tenant_id, rule_id, pair_id, kind, summary, cause, current_value, peak_value, runs_url, opened_at,
                             last_notified_at, notifications, acknowledged_at, acknowledged_by, resolved_at, resolve_notified)
    SELECT id, tenant_id, rule_id, pair_id, kind, summary, cause, current_value, peak_value, runs_url, opened_at,
           last_notified_at, notifications, acknowledged_at, acknowledged_by, resolved_at, resolve_notified FROM alert_incidents_0009;

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
INSERT INTO alert_deliveries (id, tenant_id, incident_id, channel_id, event, status, attempts, next_attempt_at, last_error, created_at, updated_at)
    SELECT id, tenant_id, incident_id, channel_id, event, status, attempts, next_attempt_at, last_error, created_at, updated_at FROM alert_deliveries_0009;

DROP TABLE alert_deliveries_0009;
DROP TABLE alert_incidents_0009;
DROP TABLE alert_rules_0009;

CREATE INDEX ix_alert_rules_tenant ON alert_rules (tenant_id);
CREATE UNIQUE INDEX uq_alert_incidents_open ON alert_incidents (rule_id, pair_id) WHERE resolved_at IS NULL;
CREATE INDEX ix_alert_incidents_tenant ON alert_incidents (tenant_id, opened_at);
CREATE INDEX ix_alert_deliveries_due ON alert_deliveries (status, next_attempt_at);
CREATE INDEX ix_alert_deliveries_incident ON alert_deliveries (tenant_id, incident_id);

-- The channels a rule notifies. A rule without rows notifies every enabled channel (the
-- behaviour before routing existed); deleting a channel removes it from every rule.
CREATE TABLE alert_rule_channels (
    rule_id     BLOB NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    channel_id  BLOB NOT NULL REFERENCES alert_channels (id) ON DELETE CASCADE,
    tenant_id   BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    PRIMARY KEY (rule_id, channel_id)
);
CREATE INDEX ix_alert_rule_channels_tenant ON alert_rule_channels (tenant_id);

-- The last webhook-subscription check of each active pair. `claimed_until` lets one process
-- at a time check a pair (so two never re-register the same topic); `missing` is what the
-- webhook_missing rule measures.
CREATE TABLE webhook_checks (
    pair_id        BLOB PRIMARY KEY NOT NULL REFERENCES pairs (id) ON DELETE CASCADE,
    tenant_id      BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    claimed_until  TEXT,
    checked_at     TEXT,
    missing        INTEGER NOT NULL DEFAULT 0,
    detail         TEXT
);
CREATE INDEX ix_webhook_checks_tenant ON webhook_checks (tenant_id);

-- The daily digest of a tenant: off until someone switches it on.
CREATE TABLE alert_digests (
    tenant_id   BLOB PRIMARY KEY NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    enabled     BOOLEAN NOT NULL DEFAULT FALSE,
    recipients  TEXT NOT NULL DEFAULT '[]',
    hour_utc    INTEGER NOT NULL DEFAULT 7 CHECK (hour_utc BETWEEN 0 AND 23),
    updated_at  TEXT NOT NULL
);

-- One row per tenant and UTC day whose digest was claimed: the primary key is what keeps
-- restarts and several worker processes from sending a day's digest twice.
CREATE TABLE alert_digest_sends (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    day         TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('sending', 'sent')),
    claimed_at  TEXT NOT NULL,
    sent_at     TEXT,
    PRIMARY KEY (tenant_id, day)
);
