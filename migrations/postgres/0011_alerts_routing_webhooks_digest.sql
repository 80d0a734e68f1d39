-- Alerting, continued: the webhook-subscription rule, per-rule channel routing, the results of
-- the periodic Shopify webhook-subscription check, and the daily digest.

-- A new rule kind: a Shopify webhook subscription the pair needs is missing or was deleted.
ALTER TABLE alert_rules DROP CONSTRAINT alert_rules_kind_check;
ALTER TABLE alert_rules ADD CONSTRAINT alert_rules_kind_check
    CHECK (kind IN ('run_dead', 'dead_letters', 'failure_rate', 'backlog_age', 'auth_paused', 'throttling', 'no_events', 'webhook_missing'));

-- The channels a rule notifies. A rule without rows notifies every enabled channel (the
-- behaviour before routing existed); deleting a channel removes it from every rule.
CREATE TABLE alert_rule_channels (
    rule_id     UUID NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    channel_id  UUID NOT NULL REFERENCES alert_channels (id) ON DELETE CASCADE,
    tenant_id   UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    PRIMARY KEY (rule_id, channel_id)
);
CREATE INDEX ix_alert_rule_channels_tenant ON alert_rule_channels (tenant_id);

-- The last webhook-subscription check of each active pair. `claimed_until` lets one process
-- at a time check a pair (so two never re-register the same topic); `missing` is what the
-- webhook_missing rule measures.
CREATE TABLE webhook_checks (
    pair_id        UUID PRIMARY KEY REFERENCES pairs (id) ON DELETE CASCADE,
    tenant_id      UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    claimed_until  TIMESTAMPTZ,
    checked_at     TIMESTAMPTZ,
    missing        BIGINT NOT NULL DEFAULT 0,
    detail         TEXT
);
CREATE INDEX ix_webhook_checks_tenant ON webhook_checks (tenant_id);

-- The daily digest of a tenant: off until someone switches it on.
CREATE TABLE alert_digests (
    tenant_id   UUID PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    enabled     BOOLEAN NOT NULL DEFAULT FALSE,
    recipients  JSONB NOT NULL DEFAULT '[]',
    hour_utc    BIGINT NOT NULL DEFAULT 7 CHECK (hour_utc BETWEEN 0 AND 23),
    updated_at  TIMESTAMPTZ NOT NULL
);

-- One row per tenant and UTC day whose digest was claimed: the primary key is what keeps
-- restarts and several worker processes from sending a day's digest twice.
CREATE TABLE alert_digest_sends (
    tenant_id   UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    day         TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('sending', 'sent')),
    claimed_at  TIMESTAMPTZ NOT NULL,
    sent_at     TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, day)
);
