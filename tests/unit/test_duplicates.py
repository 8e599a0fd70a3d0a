"""Exact duplicate rows: later copies rejected, the first judged by the other rules."""

from __future__ import annotations

from dataclasses import replace

import polars as pl

from etl.core import transform
from etl.core.rules import MALFORMED_LINE, ROW_INDEX, DuplicateRow, raw
from etl.core.specs import YELLOW
from etl.core.transform import REJECT_CODE
from tests.tlc import yellow_trip
from tests.unit.conftest import ProcessRows, reasons_of


def test_later_copies_are_rejected(process_rows: ProcessRows) -> None:
    # Three identical rows: the first is clean, the other two are duplicate_row.
    result = process_rows(
        [yellow_trip(), yellow_trip(tip_amount=1.0), yellow_trip(), yellow_trip()]
    )
    assert reasons_of(result) == [None, None, "duplicate_row", "duplicate_row"]


def test_copies_of_an_invalid_row_keep_its_reason(process_rows: ProcessRows) -> None:
    # Rules run in order and duplicate_row is last: identical invalid rows share their reason.
    bad = yellow_trip(VendorID=3)
    assert reasons_of(process_rows([bad, bad])) == ["invalid_vendor", "invalid_vendor"]


def test_rows_differing_in_one_column_are_not_duplicates(process_rows: ProcessRows) -> None:
    # Only exact copies count: a one-cent difference makes a different row.
    rows = [yellow_trip(), yellow_trip(total_amount=23.71)]
    assert reasons_of(process_rows(rows)) == [None, None]


def test_same_trip_key_with_another_tip_is_not_a_duplicate(process_rows: ProcessRows) -> None:
    # Rows sharing every column of the trip key but differing elsewhere are compared exactly.
    rows = [yellow_trip(), yellow_trip(tip_amount=4.0), yellow_trip(store_and_fwd_flag="Y")]
    assert reasons_of(process_rows(rows)) == [None, None, None]


def test_hash_collision_never_rejects_a_unique_row() -> None:
    # The hash only picks candidates; the exact comparison decides. Force every hash equal.
    frame = pl.DataFrame(
        {ROW_INDEX: [0, 1, 2], raw("a"): [1, 2, 1], MALFORMED_LINE: [None, None, None]},
        schema_overrides={ROW_INDEX: pl.UInt32, MALFORMED_LINE: pl.String},
    )
    colliding = transform.KeyHashes.of(pl.Series([7, 7, 7], dtype=pl.UInt64))
    copies = transform.later_copies(frame, ("a",), colliding)
    assert copies.to_list() == [False, False, True]


def test_a_spec_without_the_duplicate_rule_keeps_its_codes() -> None:
    # Duplicates are judged only where the dataset's rules include duplicate_row.
    spec = replace(YELLOW, rules=tuple(r for r in YELLOW.rules if not isinstance(r, DuplicateRow)))
    validated = pl.DataFrame({REJECT_CODE: [None, 3]}, schema={REJECT_CODE: pl.UInt8})
    copies = pl.Series([True, True])
    kept = transform.reject_duplicates(validated, spec, copies)
    assert kept.get_column(REJECT_CODE).to_list() == [None, 3]
    marked = transform.reject_duplicates(validated, YELLOW, copies)
    assert marked.get_column(REJECT_CODE).to_list() == [len(YELLOW.rules) - 1, 3]


def test_repeated_hashes_are_found_at_any_position() -> None:
    # The sorted hashes are compared with their neighbours: repeats at either end, in the
    # middle, three times over, and inputs too short to repeat anything.
    cases = {
        (): [],
        (5,): [],
        (5, 5): [5],
        (3, 1, 3, 2, 1, 3): [1, 3],
        (9, 0, 4, 0): [0],
    }
    for hashes, repeated in cases.items():
        found = transform.KeyHashes.of(pl.Series(hashes, dtype=pl.UInt64)).repeated
        assert sorted(found.to_list()) == repeated, hashes
