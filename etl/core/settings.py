"""ETL settings: one typed object, every field documented with its default and valid range."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from etl.core.errors import UsageError

# Refunds and corrections legitimately carry negative amounts: TLC's data dictionary codes them as
# 3 (no charge), 4 (dispute) and 6 (voided trip). Any other payment type with a negative amount is
# rejected as `negative_amount`.
REFUND_PAYMENT_TYPES: tuple[int, ...] = (3, 4, 6)


@dataclass(frozen=True)
class CoordinateBounds:
    """A longitude/latitude box in degrees (WGS84) that coordinate-era trips must fall inside."""

    min_longitude: float = -74.30
    """West edge. Default -74.30 (west of Newark Airport)."""
    max_longitude: float = -73.60
    """East edge. Default -73.60 (east of JFK and the Queens/Nassau line)."""
    min_latitude: float = 40.45
    """South edge. Default 40.45 (south of Staten Island)."""
    max_latitude: float = 41.00
    """North edge. Default 41.00 (north of the Bronx)."""


@dataclass(frozen=True)
class EtlSettings:
    """Thresholds of the validation rules. The defaults suit NYC TLC yellow and green data."""

    max_trip_duration_minutes: float = 720.0
    """Longest plausible trip (`duration_too_long` above it). Default 720 (12 h); range 1–10080."""
    month_grace_hours: float = 24.0
    """How far outside the file's month a pickup may fall before `pickup_outside_month`.
    Default 24 h (trips that started just before midnight on a month boundary); range 0–744."""
    max_distance_miles: float = 250.0
    """Longest plausible trip distance (`distance_out_of_bounds` above it). Default 250; 1–10000."""
    max_amount_usd: float = 2500.0
    """Largest plausible absolute value of any money column (`absurd_amount` above it).
    Default 2500; range 1–1e6."""
    max_speed_mph: float = 100.0
    """Fastest plausible average speed over a trip (`implausible_speed` above it). Default 100."""
    refund_payment_types: tuple[int, ...] = REFUND_PAYMENT_TYPES
    """Payment types whose rows may carry negative amounts. Default (3, 4, 6)."""
    coordinate_bounds: CoordinateBounds = field(default_factory=CoordinateBounds)
    """Box that pickups and dropoffs of the coordinate era (until mid-2016) must fall inside."""

    def __post_init__(self) -> None:
        _check_range("max_trip_duration_minutes", self.max_trip_duration_minutes, 1, 10_080)
        _check_range("month_grace_hours", self.month_grace_hours, 0, 744)
        _check_range("max_distance_miles", self.max_distance_miles, 1, 10_000)
        _check_range("max_amount_usd", self.max_amount_usd, 1, 1_000_000)
        _check_range("max_speed_mph", self.max_speed_mph, 1, 1_000)
        bounds = self.coordinate_bounds
        if not (-180 <= bounds.min_longitude < bounds.max_longitude <= 180):
            raise UsageError("coordinate_bounds: longitudes must satisfy -180 <= min < max <= 180")
        if not (-90 <= bounds.min_latitude < bounds.max_latitude <= 90):
            raise UsageError("coordinate_bounds: latitudes must satisfy -90 <= min < max <= 90")


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not (low <= value <= high):
        raise UsageError(f"{name}={value} is out of range: use a value from {low} to {high}")


def settings_from_mapping(values: Mapping[str, Any], origin: str = "settings") -> EtlSettings:
    """EtlSettings from a mapping of field names to values (a parsed TOML file, stack config),
    each checked for its type and range: a bad one is a UsageError naming `origin` and the key.
    Keys left out keep their defaults."""
    known = {item.name: item for item in fields(EtlSettings)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise UsageError(
            f"{origin}: unknown setting {unknown[0]!r}; the settings are: {', '.join(known)}"
        )
    chosen: dict[str, Any] = {}
    for name, value in values.items():
        if name == "coordinate_bounds":
            chosen[name] = _bounds(value, origin)
        elif name == "refund_payment_types":
            if not isinstance(value, list | tuple) or not all(
                isinstance(item, int) and not isinstance(item, bool) for item in value
            ):
                raise UsageError(f"{origin}: refund_payment_types must be a list of integers")
            chosen[name] = tuple(value)
        else:
            chosen[name] = _number(name, value, origin)
    try:
        return EtlSettings(**chosen)
    except UsageError as error:
        raise UsageError(f"{origin}: {error}") from None


def settings_from_json(text: str, origin: str = "settings") -> EtlSettings:
    """EtlSettings from a JSON object of field names to values (`settings_from_mapping`);
    empty text gives the defaults."""
    if not text.strip():
        return EtlSettings()
    try:
        values = json.loads(text)
    except ValueError as error:
        raise UsageError(f"{origin}: not a JSON object ({error})") from None
    if not isinstance(values, dict):
        raise UsageError(f'{origin}: must be a JSON object such as {{"max_speed_mph": 90}}')
    return settings_from_mapping(values, origin)


def json_problem(text: str) -> str | None:
    """Why `text` is not a valid JSON object of thresholds, or None: what the infrastructure
    program asks before it passes the stack's thresholds to the processor."""
    try:
        settings_from_json(text, "thresholds")
    except UsageError as error:
        return str(error).removeprefix("thresholds: ")
    return None


def _number(name: str, value: Any, origin: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UsageError(f"{origin}: {name} must be a number, not {value!r}")
    return float(value)


def _bounds(value: Any, origin: str) -> CoordinateBounds:
    if not isinstance(value, Mapping):
        raise UsageError(f"{origin}: coordinate_bounds must be a table of four numbers")
    known = [item.name for item in fields(CoordinateBounds)]
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise UsageError(
            f"{origin}: unknown setting coordinate_bounds.{unknown[0]}; use {', '.join(known)}"
        )
    return CoordinateBounds(
        **{key: _number(f"coordinate_bounds.{key}", item, origin) for key, item in value.items()}
    )
