-- The processor's own database role, dataplatform_processor (etl.contract.PROCESSOR_DB_USER),
-- granted exactly what a load does (etl/loader.py) and nothing else. The master user that runs
-- the migrations keeps owning every object; the processor owns none, so it can neither alter,
-- drop nor truncate them, and it has no CREATE anywhere.
--
-- Roles belong to the whole server, not to one database: the role is created once and granted
-- its privileges in each database migrated.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'dataplatform_processor') THEN
        CREATE ROLE dataplatform_processor
            LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
        COMMENT ON ROLE dataplatform_processor IS
            'The ETL processor: loads taxi.trips and taxi.loads; owns nothing';
    END IF;
    -- On RDS, members of rds_iam log in with IAM authentication tokens only (no password
    -- exists for the role). The role rds_iam exists on RDS, not on a plain PostgreSQL.
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'rds_iam') THEN
        GRANT rds_iam TO dataplatform_processor;
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO dataplatform_processor', current_database());
END
$$;

GRANT USAGE ON SCHEMA taxi TO dataplatform_processor;

-- A load replaces one object's rows: DELETE by source_key (which reads that column) and COPY.
-- Through the partitioned parent, which is where PostgreSQL checks the privileges; the processor
-- reads no trip data.
GRANT INSERT, DELETE ON taxi.trips TO dataplatform_processor;
GRANT SELECT (source_key) ON taxi.trips TO dataplatform_processor;

-- The audit row: upserted per object, read for repeats, ordering (sequencer) and the reports
-- index. Never deleted.
GRANT SELECT, INSERT, UPDATE ON taxi.loads TO dataplatform_processor;

-- The master tables (zones, codes) are not granted: the ETL validates codes against its own copy
-- (etl.core.master_data), and only the migrations write them.

-- Monthly partitions of taxi.trips, created on demand for a load. Creating a partition is DDL
-- that needs ownership of taxi.trips; rather than granting that, this function runs as its
-- owner (SECURITY DEFINER) and can do exactly one thing: create the partition of one month,
-- named and bounded by that month. search_path is pinned to pg_catalog (and pg_temp last), so
-- no object the caller could create is resolved instead of the intended ones; every name in
-- the body is schema-qualified. Concurrent callers are serialised by a transaction-scoped
-- advisory lock and re-check under it. Returns whether it created the partition.
CREATE FUNCTION taxi.create_trips_partition(month date) RETURNS boolean
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    first_day date := date_trunc('month', month)::date;
    partition text := 'trips_' || to_char(first_day, 'YYYY_MM');
BEGIN
    IF month IS NULL THEN
        RAISE EXCEPTION 'create_trips_partition: month must not be null';
    END IF;
    -- 0x7461786970617274, "taxipart": the same key serialises every creator.
    PERFORM pg_catalog.pg_advisory_xact_lock(8386116375392907892);
    IF EXISTS (
        SELECT FROM pg_catalog.pg_class AS c
        JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
        WHERE n.nspname = 'taxi' AND c.relname = partition
    ) THEN
        RETURN false;
    END IF;
    EXECUTE format(
        'CREATE TABLE taxi.%I PARTITION OF taxi.trips FOR VALUES FROM (%L) TO (%L)',
        partition,
        first_day::timestamp,
        (first_day + interval '1 month')::timestamp
    );
    RETURN true;
END
$$;
COMMENT ON FUNCTION taxi.create_trips_partition(date) IS
    'Create the taxi.trips partition of the month of the given day, as the table owner';

-- Functions are executable by PUBLIC by default: only the processor (and the owner) may call it.
REVOKE ALL ON FUNCTION taxi.create_trips_partition(date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION taxi.create_trips_partition(date) TO dataplatform_processor;
