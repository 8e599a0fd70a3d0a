-- Schema `taxi`: master data from the TLC data dictionary and zone lookup, the trips of every
-- dataset in one table partitioned by pickup month, and the audit of every source object.
--
-- No foreign keys from taxi.trips to the master tables: PostgreSQL checks a foreign key with a
-- per-row trigger, which would cut COPY throughput several-fold, and the ETL has already
-- rejected every row whose codes are not in the same dictionary (etl.master_data).
-- The master tables are there to join on (see taxi.trips_described).

CREATE TABLE taxi.zones (
    location_id  integer PRIMARY KEY,
    borough      text NOT NULL,
    zone         text NOT NULL,
    service_zone text NOT NULL
);
COMMENT ON TABLE taxi.zones IS 'TLC taxi zones (taxi_zone_lookup.csv); zone names are not unique, join on location_id';

CREATE TABLE taxi.vendors (
    vendor_id integer PRIMARY KEY,
    name      text NOT NULL
);

CREATE TABLE taxi.rate_codes (
    rate_code_id integer PRIMARY KEY,
    description  text NOT NULL
);

CREATE TABLE taxi.payment_types (
    payment_type integer PRIMARY KEY,
    description  text NOT NULL
);

CREATE TABLE taxi.trip_types (
    trip_type   integer PRIMARY KEY,
    description text NOT NULL
);

-- The union of the yellow and green clean schemas (etl.specs), in COPY-friendly types.
-- Partitions (taxi.trips_YYYY_MM) are created on demand by the loader.
CREATE TABLE taxi.trips (
    dataset               text NOT NULL,
    source_key            text NOT NULL,
    vendor_id             integer,
    pickup_datetime       timestamp NOT NULL,
    dropoff_datetime      timestamp,
    passenger_count       integer,
    trip_distance         double precision,
    rate_code_id          integer,
    store_and_fwd_flag    text,
    pu_location_id        integer,
    do_location_id        integer,
    pickup_longitude      double precision,
    pickup_latitude       double precision,
    dropoff_longitude     double precision,
    dropoff_latitude      double precision,
    payment_type          integer,
    trip_type             integer,
    fare_amount           double precision,
    extra                 double precision,
    mta_tax               double precision,
    tip_amount            double precision,
    tolls_amount          double precision,
    ehail_fee             double precision,
    improvement_surcharge double precision,
    total_amount          double precision,
    congestion_surcharge  double precision,
    airport_fee           double precision,
    cbd_congestion_fee    double precision,
    trip_duration_minutes double precision,
    average_speed_mph     double precision,
    pickup_date           date,
    pickup_hour           smallint
) PARTITION BY RANGE (pickup_datetime);
COMMENT ON TABLE taxi.trips IS 'Clean trips of every dataset; one source object''s rows are replaced as a whole';
COMMENT ON COLUMN taxi.trips.pickup_datetime IS 'New York local time, as TLC publishes it (no time zone)';
COMMENT ON COLUMN taxi.trips.source_key IS 'S3 key of the raw object the row came from';

-- The loader deletes an object's earlier rows by source_key before copying its new ones.
CREATE INDEX trips_source_key_idx ON taxi.trips (source_key);

CREATE TABLE taxi.loads (
    source_key    text PRIMARY KEY,
    bucket        text NOT NULL,
    version_id    text,
    etag          text,
    sequencer     text,
    dataset       text,
    month         date,
    status        text NOT NULL CHECK (status IN ('loaded', 'quarantined')),
    error_code    text,
    error         text,
    rows_in       bigint,
    rows_clean    bigint,
    rows_rejected bigint,
    load_count    integer NOT NULL DEFAULT 1,
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz NOT NULL,
    duration_ms   double precision NOT NULL,
    timings_ms    jsonb NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE taxi.loads IS 'The latest outcome for every raw object, written in the same transaction as its rows';
COMMENT ON COLUMN taxi.loads.sequencer IS 'S3 event sequencer: an older event for the key is skipped';
COMMENT ON COLUMN taxi.loads.load_count IS 'How many times the object was processed to completion';
