"""Master data shipped with the package: the official TLC zone lookup and the dictionary codes.

Location validity comes from the zone lookup (not from a magic 265): TLC has added zones before and
the lookup is the source of truth. Zone names are not unique, so everything joins on `LocationID`.
"""

from __future__ import annotations

import csv
import io
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
    return (resources.files("etl.core") / "data" / ZONE_LOOKUP_FILE).read_bytes()


@cache
def zones() -> pl.DataFrame:
    """The taxi zones: `location_id` (Int32), `borough`, `zone`, `service_zone`."""
    # 265 lines: the csv module reads them in a tenth of the 4 ms Polars' reader needs to start
    # its threads, and every `process` run pays this before validating.
    rows = list(csv.DictReader(io.StringIO(zone_lookup_bytes().decode("utf-8"))))
    return pl.DataFrame(
        {
            "location_id": [int(row["LocationID"]) for row in rows],
            "borough": [row["Borough"] for row in rows],
            "zone": [row["Zone"] for row in rows],
            "service_zone": [row["service_zone"] for row in rows],
        },
        schema={
            "location_id": pl.Int32,
            "borough": pl.String,
            "zone": pl.String,
            "service_zone": pl.String,
        },
    )


@cache
def zone_ids() -> tuple[int, ...]:
    """Every valid location ID from the zone lookup (264 Unknown, 265 Outside of NYC included)."""
    return tuple(zones().get_column("location_id").sort().to_list())


def _codes(column: str, label: str, codes: dict[int, str]) -> pl.DataFrame:
    return pl.DataFrame(
        {column: list(codes), label: list(codes.values())},
        schema={column: pl.Int32, label: pl.String},
    ).sort(column)


def master_tables() -> dict[str, pl.DataFrame]:
    """Every master table under the name and columns it has in PostgreSQL (`taxi.<name>`), as
    written to the lake for Athena to join on."""
    return {
        "zones": zones().sort("location_id"),
        "vendors": _codes("vendor_id", "name", VENDORS),
        "rate_codes": _codes("rate_code_id", "description", RATE_CODES),
        "payment_types": _codes("payment_type", "description", PAYMENT_TYPES),
        "trip_types": _codes("trip_type", "description", TRIP_TYPES),
    }
