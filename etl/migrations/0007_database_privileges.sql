-- Only the roles granted it may connect to this database, and nobody but its owner may create
-- temporary tables in it. PostgreSQL grants CONNECT and TEMPORARY on every new database to
-- PUBLIC, which is every role of the server, present and future: a role made for another
-- database, or for monitoring, could otherwise connect here, read the catalog, and fill the
-- disk with temporary tables. (CREATE on schema public is no longer PUBLIC's since
-- PostgreSQL 15, and this program runs 16 and 17: components/settings.py.)
--
-- Who connects after this: the owner (the master user that runs the migrations), the processor
-- (CONNECT granted by migration 0004), and the members of taxi_analyst (granted below; a
-- member's login role inherits it). None of them needs temporary tables: a load COPYs straight
-- into its partitions (etl/loader.py).
--
-- Privileges on a database belong to that database: as in 0004, the name is the current one.
DO $$
BEGIN
    EXECUTE format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO taxi_analyst', current_database());
END
$$;
