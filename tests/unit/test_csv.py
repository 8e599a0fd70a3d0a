"""CSV inputs: lines that cannot be parsed become rejects; nothing is lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl.core.errors import UnprocessableInput
from etl.core.naming import name_hints
from etl.core.pipeline import process_file
from etl.core.sources import InputFormat, sniff_format
from tests.tlc import write_csv, yellow_trip

HEADER = ",".join(yellow_trip())


def line(**changes: object) -> str:
    return ",".join("" if v is None else str(v) for v in yellow_trip(**changes).values())


def test_short_and_long_lines_are_malformed_rejects(tmp_path: Path) -> None:
    # A line with too few or too many fields is a reject with its text kept in raw_line.
    short = ",".join(line().split(",")[:5])
    long = line() + ",surplus"
    source = write_csv(tmp_path, "yellow_tripdata_2024-01.csv", [HEADER, line(), short, long])
    result = process_file(source)
    assert result.report["rows_in"] == 3
    assert result.clean.height == 1
    assert result.rejects.get_column("reject_reason").to_list() == ["malformed_line"] * 2
    assert result.rejects.get_column("raw_line").to_list() == [short, long]


def test_quoted_fields_are_parsed(tmp_path: Path) -> None:
    # A quoted field may hold the separator; it is one field, not a malformed line.
    quoted = line().replace(",N,", ',"N",', 1)
    assert quoted != line()
    source = write_csv(tmp_path, "yellow_tripdata_2024-01.csv", [HEADER, quoted])
    result = process_file(source)
    assert result.clean.get_column("store_and_fwd_flag").to_list() == ["N"]


def test_unparseable_value_is_a_reject(tmp_path: Path) -> None:
    # "abc" as a fare is not a number: unparseable_value, with the text as read in rejects.
    source = write_csv(tmp_path, "yellow_tripdata_2024-01.csv", [HEADER, line(fare_amount="abc")])
    result = process_file(source)
    assert result.rejects.get_column("reject_reason").to_list() == ["unparseable_value"]
    assert result.rejects.get_column("fare_amount").to_list() == ["abc"]


def test_unparseable_timestamp_is_a_reject(tmp_path: Path) -> None:
    # A timestamp that matches no TLC format is unparseable, not missing.
    bad = line(tpep_pickup_datetime="yesterday")
    result = process_file(write_csv(tmp_path, "yellow_tripdata_2024-01.csv", [HEADER, bad]))
    assert result.rejects.get_column("reject_reason").to_list() == ["unparseable_value"]


def test_us_style_timestamps_are_read(tmp_path: Path) -> None:
    # Exports from the open-data portal write 01/15/2024 08:00:00 AM.
    us = line(
        tpep_pickup_datetime="01/15/2024 08:00:00 AM",
        tpep_dropoff_datetime="01/15/2024 08:12:00 AM",
    )
    result = process_file(write_csv(tmp_path, "yellow_tripdata_2024-01.csv", [HEADER, us]))
    assert result.clean.get_column("trip_duration_minutes").to_list() == [12.0]


def test_blank_lines_crlf_and_bom_are_tolerated(tmp_path: Path) -> None:
    # Blank lines hold no data (counted in the report); CRLF endings and a BOM are not data either.
    source = tmp_path / "yellow_tripdata_2024-01.csv"
    source.write_bytes(
        ("\ufeff" + HEADER + "\r\n" + line() + "\r\n\r\n" + line(VendorID=1) + "\r\n").encode()
    )
    result = process_file(source)
    assert result.clean.height == 2
    assert result.report["schema"]["blank_lines"] == 1


def test_cr_only_line_endings_are_line_endings(tmp_path: Path, sample_csv: Path) -> None:
    # Issue 14, case 1: the sample with every LF turned into a CR (old Mac files) crashed the
    # csv module; it reads exactly like the original.
    source = tmp_path / "yellow_tripdata_2020-07.csv"
    source.write_bytes(sample_csv.read_bytes().replace(b"\n", b"\r"))
    result = process_file(source)
    original = process_file(sample_csv, source_name=source.name)
    assert result.report["rows_in"] == original.report["rows_in"] == 266
    assert result.report["reasons"] == original.report["reasons"]
    assert result.clean.equals(original.clean)


def test_bare_cr_in_a_quoted_line_ends_the_line_instead_of_the_file(tmp_path: Path) -> None:
    # Issue 14, case 2: a lone CR inside a line holding a quote raised _csv.Error for the whole
    # file. A lone CR ends a line (universal newlines): both halves are malformed rejects with
    # their text, every other line is processed.
    broken = line().replace(",N,", ',"N",', 1).replace(",161,", ",16\r1,", 1)
    lines = [HEADER, line(), broken, line(VendorID=1)]
    result = process_file(write_csv(tmp_path, "yellow_tripdata_2024-01.csv", lines))
    first, second = broken.split("\r")
    assert result.clean.height == 2
    assert result.rejects.get_column("reject_reason").to_list() == ["malformed_line"] * 2
    assert result.rejects.get_column("raw_line").to_list() == [first, second]


def test_a_line_the_csv_module_refuses_is_a_malformed_reject(tmp_path: Path) -> None:
    # Python's csv module refuses a quoted field above its field size limit (128 KiB): that
    # line is malformed, the file is not.
    huge = line().replace(",N,", ',"' + "N" * 200_000 + '",', 1)
    lines = [HEADER, line(), huge]
    result = process_file(write_csv(tmp_path, "yellow_tripdata_2024-01.csv", lines))
    assert result.clean.height == 1
    assert result.rejects.get_column("reject_reason").to_list() == ["malformed_line"]
    assert result.rejects.get_column("raw_line").to_list() == [huge]


def test_utf16_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    # Excel's "Unicode text" and other Windows tools write UTF-16 with a BOM.
    source = tmp_path / "yellow_tripdata_2024-01.csv"
    source.write_bytes("\n".join([HEADER, line(), line(VendorID=1)]).encode("utf-16"))
    result = process_file(source)
    assert result.clean.height == 2


def test_text_that_is_not_utf8_is_quarantined_as_unreadable(tmp_path: Path) -> None:
    source = tmp_path / "yellow_tripdata_2024-01.csv"
    source.write_bytes((HEADER + "\n").encode() + line().encode().replace(b"N", b"\xd1", 1))
    with pytest.raises(UnprocessableInput) as raised:
        process_file(source)
    assert raised.value.code == "unreadable"


def test_every_line_is_accounted_for(tmp_path: Path) -> None:
    # Row conservation over a mix of good, malformed and invalid lines.
    lines = [HEADER, line(), "garbage", line(VendorID=3), line(), ",,,", line(fare_amount="x")]
    result = process_file(write_csv(tmp_path, "yellow_tripdata_2024-01.csv", lines))
    assert result.report["rows_in"] == 6
    assert result.clean.height + result.rejects.height == 6
    assert result.rejects.sort("source_row").get_column("reject_reason").to_list() == [
        "malformed_line",
        "invalid_vendor",
        "duplicate_row",
        "malformed_line",
        "unparseable_value",
    ]


@pytest.mark.parametrize(
    ("name", "prefix", "month"),
    [
        ("yellow_tripdata_2024-01.parquet", "yellow_tripdata", "2024-01"),
        ("raw/green/green_tripdata_2015-12.csv.gz", "green_tripdata", "2015-12"),
        ("yellow_tripdata_2020-07_sample_rides.csv", "yellow_tripdata", "2020-07"),
        ("yellow_tripdata_2024-13.parquet", "yellow_tripdata", None),
        ("trips.parquet", None, None),
    ],
)
def test_name_hints(name: str, prefix: str | None, month: str | None) -> None:
    # Dataset prefix and month come from TLC file names, also inside S3 keys.
    hints = name_hints(name)
    assert (hints.file_prefix, hints.month) == (prefix, month)


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"PAR1", InputFormat.PARQUET),
        (b"\x1f\x8b\x08\x00", InputFormat.CSV_GZ),
        (b"Vend", InputFormat.CSV),
    ],
)
def test_format_is_sniffed_from_content(head: bytes, expected: InputFormat) -> None:
    # Content decides the format, whatever the name says.
    assert sniff_format(head) is expected
