-- taxi_analyst: read-only access for people. SELECT on every table and view of schema taxi,
-- including those later migrations and the loader create (default privileges of the role that
-- runs the migrations), and nothing else: no writes, no DDL, no other schema.
--
-- The role cannot log in. Give each person a login role that is a member of it:
--   CREATE ROLE alice LOGIN PASSWORD '...' IN ROLE taxi_analyst;
-- or, on RDS with IAM database authentication (dbIamAuthentication: true):
--   CREATE ROLE alice LOGIN IN ROLE taxi_analyst, rds_iam;
--
-- Roles belong to the server, not to one database: created only if missing, so a second
-- database on the same server migrates too.
-- Creating the role needs CREATEROLE (RDS's master user has it); granting to an existing one
-- needs only ownership of schema taxi and its tables.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'taxi_analyst') THEN
        CREATE ROLE taxi_analyst NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
        COMMENT ON ROLE taxi_analyst IS 'Read-only: SELECT on schema taxi (migration 0005)';
    END IF;
EXCEPTION WHEN duplicate_object THEN
    NULL;  -- created concurrently by a migration of another database
END
$$;

GRANT USAGE ON SCHEMA taxi TO taxi_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA taxi TO taxi_analyst;
ALTER DEFAULT PRIVILEGES IN SCHEMA taxi GRANT SELECT ON TABLES TO taxi_analyst;
