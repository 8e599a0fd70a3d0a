"""The quality report of one processed input: counts, reasons, null rates, schema notes, timings."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

import polars as pl

from etl.rules import RuleContext
from etl.settings import EtlSettings
from etl.sources import RawInput
from etl.specs import COORDINATE_COLUMNS, ZONE_COLUMNS, DatasetSpec
from etl.transform import REJECT_REASON, SchemaPlan


def build_report(
    *,
    source: str,
    spec: DatasetSpec,
    month: str,
    raw_input: RawInput,
    plan: SchemaPlan,
    validated: pl.DataFrame,
    context: RuleContext,
    settings: EtlSettings,
) -> dict[str, Any]:
    """Summarise a validated frame (every input row, canonical columns and `reject_reason`)."""
    rows_in = validated.height
    reason_counts = validated.get_column(REJECT_REASON).drop_nulls().value_counts().iter_rows()
    counted = dict(reason_counts)
    reasons = {reason: counted[reason] for reason in spec.reasons if reason in counted}
    rows_rejected = sum(reasons.values())
    columns = [column.name for column in spec.columns]
    nulls = validated.select(pl.col(columns).null_count()).row(0, named=True)
    clean = validated.filter(pl.col(REJECT_REASON).is_null())
    return {
        "source": source,
        "dataset": spec.name,
        "month": month,
        "format": raw_input.format.value,
        "rows_in": rows_in,
        "rows_clean": rows_in - rows_rejected,
        "rows_rejected": rows_rejected,
        "reasons": reasons,
        "rule_order": list(spec.reasons),
        "null_rate": {
            name: round(nulls[name] / rows_in, 6) if rows_in else 0.0 for name in columns
        },
        "pickup_range": {
            "all_rows": _range(validated.get_column("pickup_datetime")),
            "clean_rows": _range(clean.get_column("pickup_datetime")),
            "month_window": [context.month_start.isoformat(), context.month_end.isoformat()],
        },
        "schema": {
            "location_mode": _location_mode(plan),
            "renamed": plan.renamed,
            "cast": plan.casts(spec),
            "missing_optional": list(plan.missing_optional),
            "unexpected": list(plan.unexpected),
            "blank_lines": raw_input.blank_lines,
        },
        "settings": _settings_dict(settings),
    }


def _range(values: pl.Series) -> dict[str, str | None]:
    low, high = values.min(), values.max()
    return {
        "min": low.isoformat() if isinstance(low, datetime) else None,
        "max": high.isoformat() if isinstance(high, datetime) else None,
    }


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
