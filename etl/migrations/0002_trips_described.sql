-- Trips with their codes spelled out from the master data, for analysts.
CREATE VIEW taxi.trips_described AS
SELECT
    t.*,
    v.name           AS vendor_name,
    r.description    AS rate_code_description,
    p.description    AS payment_type_description,
    tt.description   AS trip_type_description,
    pu.borough       AS pickup_borough,
    pu.zone          AS pickup_zone,
    dz.borough       AS dropoff_borough,
    dz.zone          AS dropoff_zone
FROM taxi.trips AS t
LEFT JOIN taxi.vendors AS v ON v.vendor_id = t.vendor_id
LEFT JOIN taxi.rate_codes AS r ON r.rate_code_id = t.rate_code_id
LEFT JOIN taxi.payment_types AS p ON p.payment_type = t.payment_type
LEFT JOIN taxi.trip_types AS tt ON tt.trip_type = t.trip_type
LEFT JOIN taxi.zones AS pu ON pu.location_id = t.pu_location_id
LEFT JOIN taxi.zones AS dz ON dz.location_id = t.do_location_id;
