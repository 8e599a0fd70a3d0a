"""A generator of realistic yellow taxi months, for the demo and the benchmarks.

The rows follow the shape of TLC's 2024 yellow Parquet files (same columns and types) with
plausible distributions, and a chosen share of the faults real months contain: exact duplicates,
pickups from other years, time-travelling dropoffs, day-long trips, unknown zones, negative
amounts on card payments, missing fares, absurd amounts and distances.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl

from etl.core.naming import Month

POPULAR_ZONES = np.array(
    [161, 237, 236, 162, 230, 186, 142, 170, 163, 239, 48, 68, 79, 234, 132, 138]
)
AIRPORT_ZONES = (132, 138)
# Share of pickups by hour of day, shaped like a weekday in Manhattan.
HOURLY_SHAPE = np.array(
    [3, 2, 1.5, 1, 1, 1.5, 3, 4.5, 5, 5, 5, 5, 5.5, 5.5, 6, 6.5, 7, 7.5, 7.5, 7, 6.5, 6, 5, 4]
)
FAULTS = (
    "duplicate",
    "stray_year",
    "dropoff_before_pickup",
    "day_long",
    "unknown_zone",
    "negative_card_amount",
    "missing_fare",
    "absurd_amount",
    "absurd_distance",
)


def yellow_month(
    month: Month, rows: int, *, bad_fraction: float = 0.03, seed: int = 7
) -> pl.DataFrame:
    """`rows` yellow trips of `month` in the 2024 TLC schema, about `bad_fraction` of them bad."""
    rng = np.random.default_rng(seed)
    start = np.datetime64(month.start, "us")
    seconds_in_month = int((month.end - month.start).total_seconds())
    days = seconds_in_month // 86_400
    # Fewer trips at weekends, as in the real data.
    weekday = (np.arange(days) + month.start.weekday()) % 7
    day_shape = np.where(weekday >= 5, 0.8, 1.0) * (1 + 0.05 * np.sin(np.arange(days)))
    day = rng.choice(days, rows, p=day_shape / day_shape.sum())
    hour = rng.choice(24, rows, p=HOURLY_SHAPE / HOURLY_SHAPE.sum())
    second = rng.integers(0, 3600, rows)
    pickup = start + ((day * 86_400 + hour * 3600 + second) * 1_000_000).astype("timedelta64[us]")
    seconds = np.clip(rng.lognormal(np.log(720), 0.6, rows), 60, 10_800).astype(np.int64)
    minutes = seconds / 60
    dropoff = pickup + (seconds * 1_000_000).astype("timedelta64[us]")
    distance = np.round(minutes / 60 * np.clip(rng.lognormal(np.log(11), 0.35, rows), 2, 45), 2)

    payment = rng.choice([1, 2, 4, 3, 0], rows, p=[0.78, 0.155, 0.01, 0.005, 0.05])
    flex = payment == 0
    pickup_zone = _zones(rng, rows)
    fare = np.round(3 + 2.8 * distance + 0.7 * minutes, 2)
    tip = np.where(payment == 1, np.round(fare * rng.uniform(0.1, 0.3, rows), 2), 0.0)
    tolls = np.where(rng.random(rows) < 0.05, 6.94, 0.0)
    extra = rng.choice([0.0, 1.0, 2.5, 3.5], rows)
    airport_fee = np.where(np.isin(pickup_zone, AIRPORT_ZONES), 1.75, 0.0)
    congestion = np.where(rng.random(rows) < 0.9, 2.5, 0.0)
    total = np.round(fare + tip + tolls + extra + 0.5 + 1.0 + airport_fee + congestion, 2)
    disputed = (payment == 4) & (rng.random(rows) < 0.5)
    sign = np.where(disputed, -1.0, 1.0)

    frame = pl.DataFrame(
        {
            "VendorID": rng.choice([2, 1, 6], rows, p=[0.75, 0.249, 0.001]).astype(np.int32),
            "tpep_pickup_datetime": pickup,
            "tpep_dropoff_datetime": dropoff,
            "passenger_count": pl.Series(
                rng.choice(
                    [1, 2, 3, 4, 5, 6, 0], rows, p=[0.74, 0.15, 0.04, 0.02, 0.02, 0.02, 0.01]
                )
            ).scatter(np.flatnonzero(flex), None),
            "trip_distance": distance,
            "RatecodeID": pl.Series(
                rng.choice([1, 2, 99, 5, 3, 4], rows, p=[0.94, 0.035, 0.01, 0.01, 0.003, 0.002])
            ).scatter(np.flatnonzero(flex), None),
            "store_and_fwd_flag": pl.Series(rng.choice(["N", "Y"], rows, p=[0.995, 0.005])).scatter(
                np.flatnonzero(flex), None
            ),
            "PULocationID": pickup_zone.astype(np.int32),
            "DOLocationID": _zones(rng, rows).astype(np.int32),
            "payment_type": payment,
            "fare_amount": fare * sign,
            "extra": extra * sign,
            "mta_tax": 0.5 * sign,
            "tip_amount": tip,
            "tolls_amount": tolls,
            "improvement_surcharge": 1.0 * sign,
            "total_amount": total * sign,
            "congestion_surcharge": np.where(flex, np.nan, congestion),
            "Airport_fee": np.where(flex, np.nan, airport_fee),
        }
    ).with_columns(pl.col("congestion_surcharge", "Airport_fee").fill_nan(None))
    return _inject_faults(frame, rng, bad_fraction)


def _zones(rng: np.random.Generator, rows: int) -> np.ndarray:
    popular = rng.random(rows) < 0.6
    return np.where(popular, rng.choice(POPULAR_ZONES, rows), rng.integers(1, 264, rows))


def _inject_faults(
    frame: pl.DataFrame, rng: np.random.Generator, bad_fraction: float
) -> pl.DataFrame:
    rows = frame.height
    bad = int(rows * bad_fraction)
    if bad == 0:
        return frame
    positions = rng.choice(rows, bad, replace=False)
    kinds = rng.integers(0, len(FAULTS), bad)
    picked = {name: positions[kinds == index] for index, name in enumerate(FAULTS)}
    pickup, dropoff = (
        frame.get_column("tpep_pickup_datetime"),
        frame.get_column("tpep_dropoff_datetime"),
    )
    stray = picked["stray_year"]
    backwards, day_long = picked["dropoff_before_pickup"], picked["day_long"]
    frame = frame.with_columns(
        tpep_pickup_datetime=pickup.scatter(stray, datetime(2002, 12, 31, 23, 0)),
        tpep_dropoff_datetime=dropoff.scatter(stray, datetime(2002, 12, 31, 23, 20))
        .scatter(backwards, pickup.gather(backwards).dt.offset_by("-5m"))
        .scatter(day_long, pickup.gather(day_long).dt.offset_by("23h59m")),
        PULocationID=frame.get_column("PULocationID").scatter(picked["unknown_zone"], 0),
        fare_amount=frame.get_column("fare_amount")
        .scatter(picked["negative_card_amount"], -12.5)
        .scatter(picked["missing_fare"], None),
        payment_type=frame.get_column("payment_type").scatter(picked["negative_card_amount"], 1),
        total_amount=frame.get_column("total_amount").scatter(picked["absurd_amount"], 998_877.66),
        trip_distance=frame.get_column("trip_distance").scatter(
            picked["absurd_distance"], 172_431.2
        ),
    )
    # Duplicates copy other rows over the chosen positions: exact copies of earlier trips.
    duplicates = np.sort(picked["duplicate"])
    duplicates = duplicates[duplicates > 0]
    originals = (rng.random(duplicates.size) * duplicates).astype(np.int64)
    index = np.arange(rows)
    index[duplicates] = originals
    return frame[index]
