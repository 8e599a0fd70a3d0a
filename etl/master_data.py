"""Master data shipped with the package: the official TLC zone lookup and the dictionary codes.

Location validity comes from the zone lookup (not from a magic 265): TLC has added zones before and
the lookup is the source of truth. Zone names are not unique, so everything joins on `LocationID`.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import polars as pl

ZONE_LOOKUP_FILE = "taxi_zone_lookup.csv"

# Codes from TLC's trip record data dictionaries (yellow and green, 2025 editions).
VENDORS: dict[int, str] = {
    1: "Creative Mobile Technologies",
    2: "Curb Mobility",
    6: "Myle Technologies",
    7: "Helix",
}
RATE_CODES: dict[int, str] = {
    1: "Standard rate",
    2: "JFK",
    3: "Newark",
    4: "Nassau or Westchester",
    5: "Negotiated fare",
    6: "Group ride",
    99: "Null/unknown",
}
PAYMENT_TYPES: dict[int, str] = {
    0: "Flex Fare trip",
    1: "Credit card",
    2: "Cash",
    3: "No charge",
    4: "Dispute",
    5: "Unknown",
    6: "Voided trip",
}
TRIP_TYPES: dict[int, str] = {1: "Street-hail", 2: "Dispatch"}
STORE_AND_FWD_FLAGS: tuple[str, ...] = ("Y", "N")
"""Y: the trip record was held in the vehicle's memory before sending; N: it was not."""


def zone_lookup_bytes() -> bytes:
    """The shipped zone lookup CSV, byte for byte as TLC publishes it."""
    return resources.files("etl.data").joinpath(ZONE_LOOKUP_FILE).read_bytes()


@cache
def zones() -> pl.DataFrame:
    """The taxi zones: `location_id` (Int32), `borough`, `zone`, `service_zone`."""
    return pl.read_csv(
        zone_lookup_bytes(),
        schema_overrides={"LocationID": pl.Int32},
        infer_schema=False,
    ).select(
        location_id=pl.col("LocationID"),
        borough=pl.col("Borough"),
        zone=pl.col("Zone"),
        service_zone=pl.col("service_zone"),
    )


@cache
def zone_ids() -> tuple[int, ...]:
    """Every valid location ID from the zone lookup (264 Unknown, 265 Outside of NYC included)."""
    return tuple(zones().get_column("location_id").sort().to_list())
