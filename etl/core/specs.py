"""Dataset specs: the columns, aliases, types and rules of each TLC dataset, as data.

Adding a dataset (say FHV) means adding a `DatasetSpec` to `DATASETS`; the pipeline has no
per-dataset branches. Column names in specs are the canonical (clean) names; `aliases` are the
names TLC has used for the column over the years, matched case-insensitively.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import polars as pl

from etl.core import rules
from etl.core.master_data import PAYMENT_TYPES, RATE_CODES, STORE_AND_FWD_FLAGS, TRIP_TYPES, VENDORS


class ColumnType(StrEnum):
    """How a column is normalised, and its type in the clean output."""

    INTEGER = "integer"
    """Whole numbers (Int32). Floats are accepted when integral (2022–23 files store 1.0)."""
    FLOAT = "float"
    """Decimal numbers (Float64)."""
    TIMESTAMP = "timestamp"
    """Naive New York local time (Datetime, microseconds), whatever the input unit."""
    CODE = "code"
    """A short text code, stripped and upper-cased (String), e.g. store_and_fwd_flag Y/N."""

    @property
    def dtype(self) -> pl.DataType:
        """The column's Polars type in the clean output."""
        return _DTYPES[self]


_DTYPES: dict[ColumnType, pl.DataType] = {
    ColumnType.INTEGER: pl.Int32(),
    ColumnType.FLOAT: pl.Float64(),
    ColumnType.TIMESTAMP: pl.Datetime("us"),
    ColumnType.CODE: pl.String(),
}


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a dataset."""

    name: str
    """Canonical snake_case name in the clean output."""
    type: ColumnType
    aliases: tuple[str, ...] = ()
    """Names TLC has used for it; the first is the one shown in error messages."""
    required: bool = False
    """A file without this column cannot be processed and is quarantined. Optional columns that
    are absent become null."""
    codes: tuple[str, ...] = ()
    """CODE columns: the values the data dictionary allows. Values are matched case- and
    space-insensitively; the `invalid_*` rule rejects anything else."""
    labels: tuple[tuple[str, int], ...] = ()
    """INTEGER columns: text labels older vintages wrote instead of the code (upper-cased,
    e.g. ("CASH", 2)); other text that is not a number is `unparseable_value`."""

    @property
    def display_name(self) -> str:
        """The name a user knows from the TLC files (first alias, else the canonical name)."""
        return self.aliases[0] if self.aliases else self.name

    @property
    def match_names(self) -> frozenset[str]:
        """Lower-cased names that identify this column in an input."""
        return frozenset(name.lower() for name in (self.name, *self.aliases))


DERIVED_COLUMNS: dict[str, pl.DataType] = {
    "trip_duration_minutes": pl.Float64(),
    "average_speed_mph": pl.Float64(),
    "pickup_date": pl.Date(),
    "pickup_hour": pl.Int8(),
}
"""Columns the pipeline derives for every dataset (see `etl.core.transform.derive`)."""


@dataclass(frozen=True)
class DatasetSpec:
    """Everything the pipeline knows about one TLC dataset."""

    name: str
    """Short name used in options and S3 prefixes, e.g. `yellow`."""
    file_prefix: str
    """TLC file name prefix, e.g. `yellow_tripdata` in `yellow_tripdata_2024-01.parquet`."""
    columns: tuple[ColumnSpec, ...]
    location_groups: tuple[tuple[str, ...], ...]
    """A file must carry at least one complete group: zone IDs (from mid-2016) or coordinates."""
    rules: tuple[rules.Rule, ...]
    """Checked in this order; a rejected row's reason is the first rule it fails."""
    trip_key: tuple[str, ...] = ()
    """Canonical columns that tell trips apart, hashed to find duplicate candidates (which are
    then compared on every column); empty means all columns."""

    def column(self, name: str) -> ColumnSpec:
        """The column called `name` (canonical)."""
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    @property
    def clean_schema(self) -> pl.Schema:
        """The clean output's schema: identical for every vintage of the dataset's files."""
        return pl.Schema(
            [(column.name, column.type.dtype) for column in self.columns]
            + list(DERIVED_COLUMNS.items())
        )

    @property
    def reasons(self) -> tuple[str, ...]:
        """Reject reason codes in the order rules are checked."""
        return tuple(rule.reason for rule in self.rules)


INT, FLOAT, TIME, CODE = ColumnType.INTEGER, ColumnType.FLOAT, ColumnType.TIMESTAMP, ColumnType.CODE

ZONE_COLUMNS = ("pu_location_id", "do_location_id")
TRIP_KEY = (
    "pickup_datetime",
    "dropoff_datetime",
    "pu_location_id",
    "do_location_id",
    "pickup_longitude",
    "pickup_latitude",
    "trip_distance",
    "total_amount",
)
COORDINATE_COLUMNS = (
    "pickup_longitude",
    "pickup_latitude",
    "dropoff_longitude",
    "dropoff_latitude",
)


# Column names of the 2009 yellow files (vendor_name, Trip_Pickup_DateTime, Trip_Dropoff_DateTime,
# Passenger_Count, Trip_Distance, Start_Lon, Start_Lat, Rate_Code, store_and_forward, End_Lon,
# End_Lat, Payment_Type, Fare_Amt, surcharge, mta_tax, Tip_Amt, Tolls_Amt, Total_Amt) and of 2010
# (vendor_id, pickup_datetime, ..., rate_code, surcharge, ...) as public table definitions over
# TLC's yellow_tripdata_2009/2010 files list them (read through code search; the files
# themselves could not be fetched here).
# The yellow files of 2009 and 2010 name vendors and payment types in text: 2009 (columns
# vendor_name, Payment_Type) "CMT", "VTS", "DDS" and "CASH", "Credit", "No Charge", "Dispute";
# 2010 (vendor_id, payment_type) the same vendors and "CAS", "CRD", "NOC", "DIS", "UNK". CMT and
# VTS (VeriFone) are codes 1 and 2 of the dictionaries from 2015 on; Digital Dispatch Systems
# has no code, so a DDS trip is an `unparseable_value` reject (kept, with its text).
VENDOR_LABELS = (("CMT", 1), ("VTS", 2))
PAYMENT_LABELS = (
    ("CRD", 1),
    ("CRE", 1),
    ("CREDIT", 1),
    ("CAS", 2),
    ("CASH", 2),
    ("NOC", 3),
    ("NO CHARGE", 3),
    ("DIS", 4),
    ("DISPUTE", 4),
    ("UNK", 5),
    ("UNKNOWN", 5),
)

STORE_AND_FWD_FLAG = ColumnSpec(
    "store_and_fwd_flag",
    CODE,
    ("store_and_fwd_flag", "store_and_forward"),
    codes=STORE_AND_FWD_FLAGS,
)
VENDOR = ColumnSpec("vendor_id", INT, ("VendorID", "vendor_name"), labels=VENDOR_LABELS)
RATE_CODE = ColumnSpec("rate_code_id", INT, ("RatecodeID", "Rate_Code"))
PAYMENT_TYPE = ColumnSpec("payment_type", INT, ("payment_type",), labels=PAYMENT_LABELS)


def _location_columns() -> tuple[ColumnSpec, ...]:
    # Start_/End_ are the 2009 yellow names.
    return (
        ColumnSpec("pu_location_id", INT, ("PULocationID",)),
        ColumnSpec("do_location_id", INT, ("DOLocationID",)),
        ColumnSpec("pickup_longitude", FLOAT, ("pickup_longitude", "Start_Lon")),
        ColumnSpec("pickup_latitude", FLOAT, ("pickup_latitude", "Start_Lat")),
        ColumnSpec("dropoff_longitude", FLOAT, ("dropoff_longitude", "End_Lon")),
        ColumnSpec("dropoff_latitude", FLOAT, ("dropoff_latitude", "End_Lat")),
    )


def _trip_rules(
    money: Sequence[str], extra_codes: Sequence[rules.Rule] = ()
) -> tuple[rules.Rule, ...]:
    """The rules shared by the street-hail datasets, in the documented order."""
    return (
        rules.MalformedLine(),
        rules.UnparseableValue(),
        rules.MissingValue(
            "missing_timestamp",
            ("pickup_datetime", "dropoff_datetime"),
            "pickup or dropoff time missing",
        ),
        rules.NotAfter(
            "dropoff_not_after_pickup",
            "pickup_datetime",
            "dropoff_datetime",
            "dropoff at or before pickup",
        ),
        rules.DurationOver(),
        rules.OutsideMonth(
            "pickup_outside_month",
            "pickup_datetime",
            "pickup outside the file's month (plus month_grace_hours)",
        ),
        rules.NotInZones("unknown_location", ZONE_COLUMNS, "location ID not in the zone lookup"),
        rules.BadCoordinates(
            "invalid_coordinates",
            (("pickup_longitude", "pickup_latitude"), ("dropoff_longitude", "dropoff_latitude")),
            "coordinates missing, out of range or outside coordinate_bounds",
        ),
        rules.NotInCodes(
            "invalid_vendor", "vendor_id", tuple(VENDORS), False, "vendor not in the dictionary"
        ),
        rules.NotInCodes(
            "invalid_rate_code", "rate_code_id", tuple(RATE_CODES), True, "rate code not 1–6 or 99"
        ),
        rules.NotInCodes(
            "invalid_payment_type",
            "payment_type",
            tuple(PAYMENT_TYPES),
            True,
            "payment type not 0–6",
        ),
        rules.NotInCodes(
            "invalid_store_and_fwd_flag",
            "store_and_fwd_flag",
            STORE_AND_FWD_FLAGS,
            True,
            "store_and_fwd_flag not Y or N",
        ),
        *extra_codes,
        rules.MissingValue(
            "missing_fare", ("fare_amount", "total_amount"), "fare or total missing"
        ),
        rules.NegativeAmount(
            "negative_amount", tuple(money), "negative amount on a non-refund payment type"
        ),
        rules.AbsurdAmount("absurd_amount", tuple(money), "amount above max_amount_usd"),
        rules.DistanceOutOfBounds(
            "distance_out_of_bounds",
            "trip_distance",
            "distance missing, negative or above max_distance_miles",
        ),
        rules.SpeedOver(),
        rules.DuplicateRow(),
    )


_COMMON_MONEY = (
    "fare_amount",
    "extra",
    "mta_tax",
    "tip_amount",
    "tolls_amount",
    "improvement_surcharge",
    "total_amount",
    "congestion_surcharge",
    "cbd_congestion_fee",
)

YELLOW = DatasetSpec(
    name="yellow",
    file_prefix="yellow_tripdata",
    # Only what identifies and validates a trip is required: pickup and dropoff times, and a
    # location group. Aliases after the first are the 2009 names (2010 used the canonical ones).
    columns=(
        VENDOR,
        ColumnSpec("pickup_datetime", TIME, ("tpep_pickup_datetime", "Trip_Pickup_DateTime"), True),
        ColumnSpec(
            "dropoff_datetime", TIME, ("tpep_dropoff_datetime", "Trip_Dropoff_DateTime"), True
        ),
        ColumnSpec("passenger_count", INT, ("passenger_count",)),
        ColumnSpec("trip_distance", FLOAT, ("trip_distance",)),
        RATE_CODE,
        STORE_AND_FWD_FLAG,
        *_location_columns(),
        PAYMENT_TYPE,
        ColumnSpec("fare_amount", FLOAT, ("fare_amount", "Fare_Amt")),
        ColumnSpec("extra", FLOAT, ("extra", "surcharge")),
        ColumnSpec("mta_tax", FLOAT, ("mta_tax",)),
        ColumnSpec("tip_amount", FLOAT, ("tip_amount", "Tip_Amt")),
        ColumnSpec("tolls_amount", FLOAT, ("tolls_amount", "Tolls_Amt")),
        ColumnSpec("improvement_surcharge", FLOAT, ("improvement_surcharge",)),
        ColumnSpec("total_amount", FLOAT, ("total_amount", "Total_Amt")),
        ColumnSpec("congestion_surcharge", FLOAT, ("congestion_surcharge",)),
        ColumnSpec("airport_fee", FLOAT, ("Airport_fee",)),
        ColumnSpec("cbd_congestion_fee", FLOAT, ("cbd_congestion_fee",)),
    ),
    location_groups=(ZONE_COLUMNS, COORDINATE_COLUMNS),
    rules=_trip_rules((*_COMMON_MONEY, "airport_fee")),
    trip_key=TRIP_KEY,
)

GREEN = DatasetSpec(
    name="green",
    file_prefix="green_tripdata",
    columns=(
        VENDOR,
        ColumnSpec("pickup_datetime", TIME, ("lpep_pickup_datetime",), required=True),
        ColumnSpec("dropoff_datetime", TIME, ("lpep_dropoff_datetime",), required=True),
        STORE_AND_FWD_FLAG,
        RATE_CODE,
        *_location_columns(),
        ColumnSpec("passenger_count", INT, ("passenger_count",)),
        ColumnSpec("trip_distance", FLOAT, ("trip_distance",)),
        ColumnSpec("fare_amount", FLOAT, ("fare_amount",)),
        ColumnSpec("extra", FLOAT, ("extra",)),
        ColumnSpec("mta_tax", FLOAT, ("mta_tax",)),
        ColumnSpec("tip_amount", FLOAT, ("tip_amount",)),
        ColumnSpec("tolls_amount", FLOAT, ("tolls_amount",)),
        ColumnSpec("ehail_fee", FLOAT, ("ehail_fee",)),
        ColumnSpec("improvement_surcharge", FLOAT, ("improvement_surcharge",)),
        ColumnSpec("total_amount", FLOAT, ("total_amount",)),
        PAYMENT_TYPE,
        ColumnSpec("trip_type", INT, ("trip_type",)),
        ColumnSpec("congestion_surcharge", FLOAT, ("congestion_surcharge",)),
        ColumnSpec("cbd_congestion_fee", FLOAT, ("cbd_congestion_fee",)),
    ),
    location_groups=(ZONE_COLUMNS, COORDINATE_COLUMNS),
    trip_key=TRIP_KEY,
    rules=_trip_rules(
        (*_COMMON_MONEY, "ehail_fee"),
        extra_codes=(
            rules.NotInCodes(
                "invalid_trip_type",
                "trip_type",
                tuple(TRIP_TYPES),
                True,
                "trip type not 1 (street-hail) or 2 (dispatch)",
            ),
        ),
    ),
)

DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in (YELLOW, GREEN)}
"""Every dataset the pipeline can process, by name."""
