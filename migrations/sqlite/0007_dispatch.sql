-- When a run was last handed to the dispatcher: the sweeper re-sends only runs whose hand-off is
-- stale, so a backlog is not queued twice while it drains.
ALTER TABLE runs ADD COLUMN dispatched_at TEXT;
CREATE INDEX ix_runs_pair_shopify_ref ON runs (tenant_id, shopify_ref);
CREATE INDEX ix_runs_d365_ref ON runs (tenant_id, d365_ref);
