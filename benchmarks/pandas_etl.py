"""The ETL's rules implemented the way a careful pandas user would: vectorised, no row loops.

This is the comparison point for `benchmarks/etl_benchmark.py` (the AWS SDK for pandas world).
It reads a 2024-style yellow Parquet file and writes clean/, rejects/ and report.json like
`dataplatform process`, applying the same rules in the same order with the default settings.

    python benchmarks/pandas_etl.py INPUT OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from etl.core.master_data import PAYMENT_TYPES, RATE_CODES, VENDORS, zone_ids
from etl.core.settings import EtlSettings

CANONICAL = {
    "vendorid": "vendor_id",
    "tpep_pickup_datetime": "pickup_datetime",
    "tpep_dropoff_datetime": "dropoff_datetime",
    "ratecodeid": "rate_code_id",
    "pulocationid": "pu_location_id",
    "dolocationid": "do_location_id",
}
INTEGERS = (
    "vendor_id",
    "passenger_count",
    "rate_code_id",
    "pu_location_id",
    "do_location_id",
    "payment_type",
)
MONEY = (
    "fare_amount",
    "extra",
    "mta_tax",
    "tip_amount",
    "tolls_amount",
    "improvement_surcharge",
    "total_amount",
    "congestion_surcharge",
    "airport_fee",
)


def run(source: Path, out: Path, month_start: str = "2024-01-01") -> None:
    settings = EtlSettings()
    raw = pd.read_parquet(source)
    df = raw.rename(columns=lambda name: CANONICAL.get(name.lower(), name.lower()))
    for name in INTEGERS:
        df[name] = df[name].astype("Int32")
    pickup, dropoff = (
        df["pickup_datetime"].astype("datetime64[us]"),
        df["dropoff_datetime"].astype("datetime64[us]"),
    )
    minutes = (dropoff - pickup).dt.total_seconds() / 60
    df["trip_duration_minutes"] = minutes
    df["average_speed_mph"] = (df["trip_distance"] / (minutes / 60)).where(minutes > 0)
    df["pickup_date"] = pickup.dt.date
    df["pickup_hour"] = pickup.dt.hour.astype("int8")

    start = pd.Timestamp(month_start)
    grace = pd.Timedelta(hours=settings.month_grace_hours)
    end = start + pd.offsets.MonthBegin(1)
    money = df[list(MONEY)]
    refund = df["payment_type"].isin(settings.refund_payment_types).fillna(False).to_numpy(bool)
    zones = list(zone_ids())

    def codes(column: str, allowed: list[Any], nullable: bool) -> np.ndarray:
        values = df[column]
        unknown = ~values.isin(allowed).fillna(False).to_numpy(bool)
        missing = values.isna().to_numpy()
        return unknown & ~missing if nullable else unknown | missing

    conditions = [
        (pickup.isna() | dropoff.isna()).to_numpy(),
        (dropoff <= pickup).fillna(False).to_numpy(),
        (minutes > settings.max_trip_duration_minutes).fillna(False).to_numpy(),
        ((pickup < start - grace) | (pickup >= end + grace)).fillna(False).to_numpy(),
        codes("pu_location_id", zones, False) | codes("do_location_id", zones, False),
        codes("vendor_id", list(VENDORS), False),
        codes("rate_code_id", list(RATE_CODES), True),
        codes("payment_type", list(PAYMENT_TYPES), True),
        codes("store_and_fwd_flag", ["Y", "N"], True),
        (df["fare_amount"].isna() | df["total_amount"].isna()).to_numpy(),
        (money < 0).any(axis=1).to_numpy() & ~refund,
        (money.abs() > settings.max_amount_usd).any(axis=1).to_numpy(),
        (
            df["trip_distance"].isna()
            | ~df["trip_distance"].between(0, settings.max_distance_miles)
        ).to_numpy(),
        (df["average_speed_mph"] > settings.max_speed_mph).fillna(False).to_numpy(),
        raw.duplicated(keep="first").to_numpy(),
    ]
    reasons = [
        "missing_timestamp",
        "dropoff_not_after_pickup",
        "duration_too_long",
        "pickup_outside_month",
        "unknown_location",
        "invalid_vendor",
        "invalid_rate_code",
        "invalid_payment_type",
        "invalid_store_and_fwd_flag",
        "missing_fare",
        "negative_amount",
        "absurd_amount",
        "distance_out_of_bounds",
        "implausible_speed",
        "duplicate_row",
    ]
    reason = np.select(conditions, reasons, default="")
    rejected = reason != ""
    (out / "clean").mkdir(parents=True, exist_ok=True)
    (out / "rejects").mkdir(parents=True, exist_ok=True)
    df[~rejected].to_parquet(
        out / "clean" / f"{source.stem}.parquet", compression="zstd", index=False
    )
    rejects = raw[rejected].assign(
        source_row=np.flatnonzero(rejected), reject_reason=reason[rejected]
    )
    rejects.to_parquet(out / "rejects" / f"{source.stem}.parquet", compression="zstd", index=False)
    counts = pd.Series(reason[rejected]).value_counts().to_dict()
    report = {
        "rows_in": len(df),
        "rows_clean": int((~rejected).sum()),
        "rows_rejected": int(rejected.sum()),
        "reasons": {key: int(value) for key, value in counts.items()},
        "null_rate": {name: float(rate) for name, rate in df.isna().mean().items()},
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    run(Path(sys.argv[1]), Path(sys.argv[2]))
