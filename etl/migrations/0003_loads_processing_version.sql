-- What processed each object: a hash of the ETL's code and rule thresholds. A redelivery of a
-- version already processed by the same code and thresholds is acknowledged without work; after
-- a deploy that changes either, a backfill processes every object again.
ALTER TABLE taxi.loads ADD COLUMN processing_version text;
COMMENT ON COLUMN taxi.loads.processing_version IS 'Hash of the ETL code and thresholds that produced this outcome';
