-- Unused by any query (links are read by pair, entity and Shopify id); PostgreSQL's planner
-- chose it over the primary key, so it goes on both backends.
DROP INDEX IF EXISTS ix_links_d365;
