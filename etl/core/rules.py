"""Validation rules: each one names a reason code and builds a Polars expression that is true for a
failing row. Rules are data in a dataset spec; the pipeline evaluates them in the spec's order and
keeps the first failing reason for each row.

Every rule reads the *normalised* columns (canonical names and types), except the structural ones
that look at the row as read (`MalformedLine`, `UnparseableValue`, `DuplicateRow`).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import polars as pl

from etl.core.settings import EtlSettings

RAW_PREFIX = "raw:"
"""Columns as read from the input carry this prefix inside the pipeline, so that a canonical column
(`passenger_count`) never collides with the input column it came from (`passenger_count`)."""
ROW_INDEX = "source_row"
"""Zero-based position of the row in the input (CSV: data line order), kept with every reject."""
MALFORMED_LINE = "raw_line"
"""CSV only: the whole text of a line that did not split into the header's number of fields."""


def raw(name: str) -> str:
    """The pipeline's name for the input column `name` as read."""
    return f"{RAW_PREFIX}{name}"


def is_one_of(value: pl.Expr, codes: Sequence[int | str]) -> pl.Expr:
    """Whether `value` is one of `codes` (null for a null value)."""
    if codes and all(isinstance(code, str) for code in codes):
        # Text is compared with each code in turn: for the two letters of a TLC flag that is
        # half the CPU of the hash lookup `is_in` does (numbers look up cheaply).
        return pl.any_horizontal([value == code for code in codes])
    return value.is_in(pl.lit(pl.Series(codes)).implode())


_LARGEST_FLOAT = sys.float_info.max


def is_not_finite(value: pl.Expr) -> pl.Expr:
    """Whether a float is NaN or infinite (null for null): `~is_finite()`, at half the CPU, because
    Polars orders NaN above every number."""
    return value.abs() > _LARGEST_FLOAT


@dataclass(frozen=True)
class RuleContext:
    """What a rule may know about the file being validated besides its rows."""

    settings: EtlSettings
    month_start: datetime
    month_end: datetime
    present: frozenset[str]
    """Canonical columns the input actually carries (absent optional columns are all null)."""
    sources: Mapping[str, str]
    """Canonical column -> the input column it was read from."""
    zone_ids: tuple[int, ...]
    float_columns: tuple[str, ...] = ()
    """Canonical columns of floating-point type (checked for NaN and infinities)."""
    fallible: frozenset[str] | None = None
    """Canonical columns whose conversion from the input type can fail (None: all of them)."""


class Rule(Protocol):
    """A reason-coded check. `failing` returns None where the rule does not apply to this file,
    or for a rule judged over the whole file rather than row by row (`DuplicateRow`)."""

    @property
    def reason(self) -> str: ...

    @property
    def description(self) -> str: ...

    def failing(self, ctx: RuleContext) -> pl.Expr | None: ...


@dataclass(frozen=True)
class MalformedLine:
    """A CSV line that did not split into as many fields as the header has."""

    reason: str = "malformed_line"
    description: str = "CSV line with a different number of fields than the header"

    def failing(self, ctx: RuleContext) -> pl.Expr | None:
        return pl.col(MALFORMED_LINE).is_not_null()


@dataclass(frozen=True)
class UnparseableValue:
    """A value present in the input that cannot be read as its column's type ("abc" as a fare),
    or a number that is not finite (NaN, infinity)."""

    reason: str = "unparseable_value"
    description: str = "a value that cannot be converted to its column's type, or NaN/infinity"

    def failing(self, ctx: RuleContext) -> pl.Expr | None:
        checks = [
            pl.col(raw(source)).is_not_null() & pl.col(name).is_null()
            for name, source in sorted(ctx.sources.items())
            if ctx.fallible is None or name in ctx.fallible
        ]
        # NaN and infinities are not amounts or distances.
        checks += [is_not_finite(pl.col(name)) for name in ctx.float_columns if name in ctx.sources]
        return pl.any_horizontal(checks) if checks else None


@dataclass(frozen=True)
class MissingValue:
    """Any of `columns` is null (of those the file carries)."""

    reason: str
    columns: tuple[str, ...]
    description: str

    def failing(self, ctx: RuleContext) -> pl.Expr | None:
        # A column the file lacks is not missing from its rows: the schema notes say so.
        present = [name for name in self.columns if name in ctx.present]
        return pl.any_horizontal([pl.col(name).is_null() for name in present]) if present else None


@dataclass(frozen=True)
class NotAfter:
    """`later` is not strictly after `earlier` (zero-length and time-travelling trips)."""

    reason: str
    earlier: str
    later: str
    description: str

    def failing(self, ctx: RuleContext) -> pl.Expr | None:
        return pl.col(self.later) <= pl.col(self.earlier)


@dataclass(frozen=True)
class DurationOver:
    """`trip_duration_minutes` above `settings.max_trip_duration_minutes`."""

    reason: str = "duration_too_long"
    description: str = "trip longer than max_trip_duration_minutes"

    def failing(self, ctx: RuleContext) -> pl.Expr | None:
        return pl.col("trip_duration_minutes") > ctx.settings.max_trip_duration_minutes


@dataclass(frozen=True)
class OutsideMonth:
    """`column` outside the file's month, widened by `settings.month_grace_hours` on both sides."""

    reason: str
    column: str
    description: str

    def failing(self, ctx: RuleContext) -> pl.Expr | None:
        grace = timedelta(hours=ctx.settings.month_grace_hours)
        value = pl.col(self.column)
        return (value < ctx.month_start - grace) | (value >= ctx.month_end + grace)


@dataclass(frozen=True)
class NotInZones:
    """A location ID that is null or not in the zone master data. Applies to files that carry
    location IDs (from mid-2016)."""

    reason: str
    columns: tuple[str, ...]
    description: str

    def failing(self, ctx: RuleContext) -> pl.Expr | None:
        if not set(self.columns) <= ctx.present:
            return None
        ids = ctx.zone_ids
        if ids and ids == tuple(range(ids[0], ids[-1] + 1)):
            # The lookup numbers its zones without gaps (1-265): a range test is a third of
            # the CPU of a set lookup, and null fails it too.
            return pl.any_horizontal(
                [
                    ~pl.col(name).is_between(ids[0], ids[-1]).fill_null(value=False)
                    for name in self.columns
                ]
            )
        return pl.any_horizontal(
            [~is_one_of(pl.col(name), ids) | pl.col(name).is_null() for name in self.columns]
        )


@dataclass(frozen=True)
class BadCoordinates:
    """Coordinate-era files (until mid-2016): a point that is missing, outside valid longitude and
    latitude ranges, or outside `settings.coordinate_bounds` (this also rejects the (0, 0) that
    meters wrote when GPS had no fix)."""

    reason: str
    points: tuple[tuple[str, str], ...]
    """(longitude column, latitude column) per point."""
    description: str

    def failing(self, ctx: RuleContext) -> pl.Expr | None:
        columns = {column for point in self.points for column in point}
        if not columns <= ctx.present:
            return None
        box = ctx.settings.coordinate_bounds
        outside = []
        for longitude, latitude in self.points:
            lon, lat = pl.col(longitude), pl.col(latitude)
            # The box lies inside the valid ranges, so one test covers range and box; `is_between`
            # of a null is null, hence the explicit null test.
            inside = lon.is_between(box.min_longitude, box.max_longitude) & lat.is_between(
                box.min_latitude, box.max_latitude
            )
            outside.append(lon.is_null() | lat.is_null() | ~inside)
        return pl.any_horizontal(outside)


@dataclass(frozen=True)
class NotInCodes:
    """A value outside the data dictionary's codes. Null passes when `nullable` (TLC leaves codes
    empty on some trips, e.g. Flex Fare rows from 2023), and fails otherwise. Does not apply to a
    file without the column."""

    reason: str
    column: str
    codes: tuple[int | str, ...]
    nullable: bool
    description: str

    def failing(self, ctx: RuleContext) -> pl.Expr | None:
        if self.column not in ctx.present:
            return None
        value = pl.col(self.column)
        unknown = ~is_one_of(value, self.codes)
        return (unknown & value.is_not_null()) if self.nullable else (unknown | value.is_null())


@dataclass(frozen=True)
class NegativeAmount:
    """A negative money value on a trip whose payment type is not a refund or correction
    (`settings.refund_payment_types`: no charge, dispute, voided trip by default)."""

    reason: str
    columns: tuple[str, ...]
    description: str

    def failing(self, ctx: RuleContext) -> pl.Expr | None:
        negative = pl.any_horizontal([pl.col(name) < 0 for name in self.columns])
        refund = is_one_of(pl.col("payment_type"), ctx.settings.refund_payment_types)
        return negative & ~refund.fill_null(value=False)


@dataclass(frozen=True)
class AbsurdAmount:
    """A money value whose absolute value is above `settings.max_amount_usd`."""

    reason: str
    columns: tuple[str, ...]
    description: str

    def failing(self, ctx: RuleContext) -> pl.Expr | None:
        limit = ctx.settings.max_amount_usd
        return pl.any_horizontal([pl.col(name).abs() > limit for name in self.columns])


@dataclass(frozen=True)
class DistanceOutOfBounds:
    """A distance that is null, negative or above `settings.max_distance_miles` (in a file that
    carries distances)."""

    reason: str
    column: str
    description: str

    def failing(self, ctx: RuleContext) -> pl.Expr | None:
        if self.column not in ctx.present:
            return None
        value = pl.col(self.column)
        return value.is_null() | ~value.is_between(0, ctx.settings.max_distance_miles)


@dataclass(frozen=True)
class SpeedOver:
    """Average speed above `settings.max_speed_mph` (a distance the duration cannot cover)."""

    reason: str = "implausible_speed"
    description: str = "average speed above max_speed_mph"

    def failing(self, ctx: RuleContext) -> pl.Expr | None:
        return pl.col("average_speed_mph") > ctx.settings.max_speed_mph


@dataclass(frozen=True)
class DuplicateRow:
    """The row is an exact copy, in every input column, of an earlier row of the same file. The
    first copy is judged by the other rules; later copies are rejected. Always the last rule,
    applied after the others by `transform.reject_duplicates` because it compares rows with
    each other."""

    reason: str = "duplicate_row"
    description: str = "exact copy of an earlier row in the same file"

    def failing(self, ctx: RuleContext) -> pl.Expr | None:
        return None
