-- Billing per integration pair. Money is stored as decimal text (e.g. '599.00') and computed
-- with rust_decimal in the application, identically on both backends.

-- The plan catalogue, managed by platform admins. `price_per_pair` is per production pair per
-- month; an annual plan bills twelve months at once.
CREATE TABLE billing_plans (
    id                     BLOB PRIMARY KEY NOT NULL,
    code                   TEXT NOT NULL,
    name                   TEXT NOT NULL,
    price_per_pair         TEXT NOT NULL,
    currency               TEXT NOT NULL,
    billing_interval       TEXT NOT NULL CHECK (billing_interval IN ('month', 'year')),
    included_transactions  INTEGER NOT NULL,
    included_api_calls     INTEGER NOT NULL,
    sandbox_pairs          INTEGER NOT NULL,
    active                 BOOLEAN NOT NULL DEFAULT TRUE,
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL,
    CONSTRAINT uq_billing_plans_code UNIQUE (code)
);

-- Who issues invoices. Each issuer numbers its invoices 1, 2, 3, … without gaps: the counter
-- is taken and the invoice inserted in one transaction.
CREATE TABLE billing_issuers (
    id           TEXT PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    details      TEXT NOT NULL DEFAULT '',
    prefix       TEXT NOT NULL,
    next_number  INTEGER NOT NULL DEFAULT 1
);
INSERT INTO billing_issuers (id, name, details, prefix, next_number)
VALUES ('syncline', 'Syncline', '', 'SYN', 1);

-- One subscription per tenant: its plan and the number of production pairs it pays for.
CREATE TABLE subscriptions (
    tenant_id     BLOB PRIMARY KEY NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    plan_id       BLOB NOT NULL REFERENCES billing_plans (id),
    pairs         INTEGER NOT NULL CHECK (pairs >= 0),
    status        TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'lapsed')),
    anchor_on     TEXT NOT NULL,
    tax_rate      TEXT NOT NULL,
    issuer_id     TEXT NOT NULL REFERENCES billing_issuers (id),
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

-- Every change of plan or pair count, effective from a day: invoices prorate from this log.
CREATE TABLE subscription_changes (
    id            BLOB PRIMARY KEY NOT NULL,
    tenant_id     BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    effective_on  TEXT NOT NULL,
    plan_id       BLOB NOT NULL REFERENCES billing_plans (id),
    pairs         INTEGER NOT NULL,
    actor         TEXT NOT NULL,
    created_at    TEXT NOT NULL
);
CREATE INDEX ix_subscription_changes_tenant ON subscription_changes (tenant_id, effective_on);

-- One row per billable transaction (a successful record sync). The unique key is the synced
-- record and action, not the run: a retry, a replay or a duplicated webhook is counted once.
CREATE TABLE billable_events (
    id          BLOB PRIMARY KEY NOT NULL,
    tenant_id   BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    pair_id     BLOB NOT NULL REFERENCES pairs (id) ON DELETE CASCADE,
    flow        TEXT NOT NULL,
    action      TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    run_id      BLOB NOT NULL,
    day         TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    CONSTRAINT uq_billable_events_pair_id_flow_action_record_id UNIQUE (pair_id, flow, action, record_id)
);
-- Transactions per pair per day are counted from here (one statement per sync, no counter row
-- to contend on).
CREATE INDEX ix_billable_events_tenant_day ON billable_events (tenant_id, day);

-- Partner API calls per pair per day (fair use), added once per attempt.
CREATE TABLE usage_daily (
    tenant_id     BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    pair_id       BLOB NOT NULL REFERENCES pairs (id) ON DELETE CASCADE,
    day           TEXT NOT NULL,
    api_calls     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (pair_id, day)
);
CREATE INDEX ix_usage_daily_tenant_day ON usage_daily (tenant_id, day);

-- Invoices: numbered per issuer, one per tenant and billing period.
CREATE TABLE invoices (
    id                 BLOB PRIMARY KEY NOT NULL,
    tenant_id          BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    issuer_id          TEXT NOT NULL REFERENCES billing_issuers (id),
    number             INTEGER NOT NULL,
    period_start       TEXT NOT NULL,
    period_end         TEXT NOT NULL,
    currency           TEXT NOT NULL,
    subtotal           TEXT NOT NULL,
    tax_rate           TEXT NOT NULL,
    tax                TEXT NOT NULL,
    total              TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('open', 'paid', 'void')),
    issued_on          TEXT NOT NULL,
    due_on             TEXT NOT NULL,
    paid_at            TEXT,
    payment_reference  TEXT,
    created_at         TEXT NOT NULL,
    CONSTRAINT uq_invoices_issuer_id_number UNIQUE (issuer_id, number),
    CONSTRAINT uq_invoices_tenant_id_period_start UNIQUE (tenant_id, period_start)
);
CREATE INDEX ix_invoices_tenant ON invoices (tenant_id, period_start);

CREATE TABLE invoice_lines (
    invoice_id   BLOB NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
    tenant_id    BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    position     INTEGER NOT NULL,
    description  TEXT NOT NULL,
    days         INTEGER NOT NULL,
    period_days  INTEGER NOT NULL,
    unit_price   TEXT NOT NULL,
    amount       TEXT NOT NULL,
    PRIMARY KEY (invoice_id, position)
);

-- Fair-use notices: one per tenant, period, metric and threshold (80 or 100 %), so several
-- evaluator processes notify once.
CREATE TABLE billing_notices (
    tenant_id     BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    period_start  TEXT NOT NULL,
    metric        TEXT NOT NULL,
    threshold     INTEGER NOT NULL,
    used          INTEGER NOT NULL,
    included      INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    sent_at       TEXT,
    PRIMARY KEY (tenant_id, period_start, metric, threshold)
);
