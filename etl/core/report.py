"""The quality report of one processed input: counts, reasons, null rates, schema notes, timings."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import polars as pl

from etl.core.rules import RuleContext
from etl.core.settings import EtlSettings
from etl.core.sources import RawInput
from etl.core.specs import COORDINATE_COLUMNS, ZONE_COLUMNS, DatasetSpec
from etl.core.transform import REJECT_CODE, SchemaPlan, pickup_date, reject_column_names


def build_report(
    *,
    source: str,
    spec: DatasetSpec,
    month: str,
    raw_input: RawInput,
    plan: SchemaPlan,
    validated: pl.DataFrame,
    context: RuleContext,
) -> dict[str, Any]:
    """Summarise a validated frame (every input row, canonical columns and `reject_code`)."""
    columns = [column.name for column in spec.columns]
    pickup = pl.col("pickup_datetime")
    is_clean = pl.col(REJECT_CODE).is_null()
    summary = validated.select(
        pl.len().alias("rows_in"),
        pl.col(columns).null_count().name.prefix("nulls:"),
        # As microseconds: a corrupt timestamp may lie beyond year 9999, which Python's
        # datetime cannot hold.
        pickup.min().cast(pl.Int64).alias("all_min"),
        pickup.max().cast(pl.Int64).alias("all_max"),
    ).row(0, named=True)
    # Clean rows per day, with each day's first and last pickup: the clean pickup range comes
    # from these few rows instead of a filtered copy of the whole pickup column.
    per_day = (
        validated.lazy()
        .select(pickup_date().alias("pickup_date"), "pickup_datetime", REJECT_CODE)
        .filter(is_clean)
        .group_by("pickup_date")
        .agg(pl.len().alias("trips"), pickup.min().alias("first"), pickup.max().alias("last"))
        .sort("pickup_date")
        .collect()
    )
    counted = dict(validated.get_column(REJECT_CODE).drop_nulls().value_counts().iter_rows())
    reasons = {reason: counted[code] for code, reason in enumerate(spec.reasons) if code in counted}
    rows_in: int = summary["rows_in"]
    rows_rejected = sum(reasons.values())
    rows_clean = validated.get_column(REJECT_CODE).null_count()
    return {
        "source": source,
        "dataset": spec.name,
        "month": month,
        "format": raw_input.format.value,
        "rows_in": rows_in,
        "rows_clean": rows_clean,
        "rows_rejected": rows_rejected,
        "reasons": reasons,
        "reason_meanings": {rule.reason: rule.description for rule in spec.rules},
        "rule_order": list(spec.reasons),
        "null_rate": {
            name: round(summary[f"nulls:{name}"] / rows_in, 6) if rows_in else 0.0
            for name in columns
        },
        "pickup_range": {
            "all_rows": _range(summary["all_min"], summary["all_max"]),
            "clean_rows": _range(per_day["first"].min(), per_day["last"].max()),
            "month_window": [context.month_start.isoformat(), context.month_end.isoformat()],
        },
        "trips_per_day": {
            day.isoformat(): trips
            for day, trips in per_day.select("pickup_date", "trips").iter_rows()
        },
        "schema": {
            "location_mode": _location_mode(plan),
            "renamed": plan.renamed,
            "cast": plan.casts(spec),
            "missing_optional": list(plan.missing_optional),
            "unexpected": list(plan.unexpected),
            "renamed_in_rejects": {
                name: kept
                for name, kept in reject_column_names(raw_input.columns).items()
                if kept != name
            },
            "blank_lines": raw_input.blank_lines,
        },
        "settings": _settings_dict(context.settings),
        "provenance": {
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "source": source,
            "etl_version": etl_version(),
        },
    }


def etl_version() -> str:
    """The version of the code that built a report: the installed package's, or `unknown` where
    no package metadata ships (the Lambda bundle carries the sources only)."""
    try:
        return version("dataplatform")
    except PackageNotFoundError:
        return "unknown"


def _range(low: object, high: object) -> dict[str, str | None]:
    return {"min": _iso(low), "max": _iso(high)}


_EPOCH = datetime(1970, 1, 1)


def _iso(value: object) -> str | None:
    if isinstance(value, datetime):
        return value.isoformat()
    if not isinstance(value, int):
        return None
    try:
        return (_EPOCH + timedelta(microseconds=value)).isoformat()
    except OverflowError:  # beyond Python's years 1-9999: Polars formats it, up to its own
        if abs(value) > _FORMATTABLE_MICROSECONDS:  # limit (it panics beyond)
            return f"{value} microseconds from 1970-01-01"
        text: str = pl.select(
            pl.lit(value).cast(pl.Datetime("us")).dt.strftime("%Y-%m-%dT%H:%M:%S%.f")
        ).item()
        return text


_FORMATTABLE_MICROSECONDS = 200_000 * 365 * 86_400_000_000


def _location_mode(plan: SchemaPlan) -> str:
    if set(ZONE_COLUMNS) <= plan.present:
        return "zone_ids"
    if set(COORDINATE_COLUMNS) <= plan.present:
        return "coordinates"
    return "none"


def _settings_dict(settings: EtlSettings) -> dict[str, Any]:
    values = asdict(settings)
    values["refund_payment_types"] = list(settings.refund_payment_types)
    return values
