-- No query reads links by D365 key, but with this index PostgreSQL's generic plan for the
-- lookup by (pair, entity, Shopify id) scanned every link of the entity through it instead of
-- using the primary key: at 3,000 orders each lookup took 3.6 ms and kept growing.
DROP INDEX IF EXISTS ix_links_d365;

-- Order payloads and run snapshots are a few kilobytes each, so PostgreSQL compresses them
-- (TOAST). Its default, pglz, took a seventh of the database's CPU under load; lz4 does the
-- same job several times faster. Only servers built with lz4 offer it, so elsewhere this
-- changes nothing. New values only: stored ones stay as they are, and both read back alike.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
        ALTER TABLE inbox ALTER COLUMN payload SET COMPRESSION lz4;
        ALTER TABLE runs ALTER COLUMN input_snapshot SET COMPRESSION lz4;
        ALTER TABLE runs ALTER COLUMN output_snapshot SET COMPRESSION lz4;
    END IF;
END
$$;
