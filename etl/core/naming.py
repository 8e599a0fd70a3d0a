"""Names of months and files: which dataset and month a TLC file covers, from its name or from
explicit options, and the base name of its outputs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from etl.core.errors import UnprocessableInput, UsageError
from etl.core.specs import DATASETS, DatasetSpec

_TLC_NAME = re.compile(r"^(?P<prefix>[a-z]+_tripdata)_(?P<year>\d{4})-(?P<month>\d{2})(?!\d)")


@dataclass(frozen=True)
class Month:
    """A calendar month, e.g. 2024-01."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        """Parse `YYYY-MM`; raise `UsageError` otherwise."""
        try:
            start = datetime.strptime(text, "%Y-%m")
        except ValueError:
            raise UsageError(f"month {text!r} is not YYYY-MM (for example 2024-01)") from None
        return cls(start.year, start.month)

    @property
    def start(self) -> datetime:
        """Midnight on the first day of the month (naive, New York local time like the data)."""
        return datetime(self.year, self.month, 1)

    @property
    def end(self) -> datetime:
        """Midnight on the first day of the next month."""
        return datetime(self.year + self.month // 12, self.month % 12 + 1, 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass(frozen=True)
class NameHints:
    """What a TLC file name says: `yellow_tripdata_2024-01.parquet` -> yellow_tripdata, 2024-01."""

    file_prefix: str | None
    month: str | None


def name_hints(name: str) -> NameHints:
    """Dataset prefix and month from a TLC file name; None where the name does not say."""
    match = _TLC_NAME.match(Path(name).name)
    if match is None:
        return NameHints(None, None)
    month = f"{match['year']}-{match['month']}"
    return NameHints(match["prefix"], month if 1 <= int(match["month"]) <= 12 else None)


def output_stem(source_name: str) -> str:
    """The base name of an input's outputs: its file name without suffixes
    (`yellow_tripdata_2024-01.csv.gz` -> `yellow_tripdata_2024-01`)."""
    return Path(source_name).name.split(".", 1)[0] or "input"


def resolve_dataset(source_name: str, dataset: str | None) -> DatasetSpec:
    """The dataset an input belongs to: the explicit option, else its TLC file name."""
    if dataset is not None:
        if dataset not in DATASETS:
            raise UnprocessableInput("unknown_dataset", _unknown_dataset(dataset))
        return DATASETS[dataset]
    prefix = name_hints(source_name).file_prefix
    for spec in DATASETS.values():
        if spec.file_prefix == prefix:
            return spec
    if prefix is not None:
        raise UnprocessableInput("unknown_dataset", _unknown_dataset(prefix.split("_")[0]))
    raise UnprocessableInput(
        "unknown_dataset",
        f"cannot tell the dataset from the name {source_name!r}: name it like "
        "yellow_tripdata_2024-01.parquet or pass --dataset",
    )


def _unknown_dataset(name: str) -> str:
    return f"unknown dataset {name!r}: known datasets are {', '.join(DATASETS)}"


def resolve_month(source_name: str, month: str | None) -> Month:
    """The month an input covers: the explicit option, else its TLC file name."""
    if month is not None:
        return Month.parse(month)
    hinted = name_hints(source_name).month
    if hinted is None:
        raise UnprocessableInput(
            "unknown_month",
            f"cannot tell the month from the name {source_name!r}: name it like "
            "yellow_tripdata_2024-01.parquet or pass --month YYYY-MM",
        )
    return Month.parse(hinted)
