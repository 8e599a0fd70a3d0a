"""The shipped migrations: well named, in order, and fingerprinted with the master data."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl import migrate
from etl.core import master_data
from etl.migrate import fingerprint, load_migrations

MIGRATIONS = Path(migrate.__file__).parent / "migrations"


def test_migrations_are_numbered_without_gaps() -> None:
    versions = [migration.version for migration in load_migrations()]
    expected = list(range(1, max(versions) + 1))

    assert versions == expected
    assert [m.filename for m in load_migrations()] == sorted(
        p.name for p in MIGRATIONS.glob("*.sql")
    )


def test_fingerprint_follows_the_master_data(monkeypatch: pytest.MonkeyPatch) -> None:
    # Deploys key the migration run on this: a new vendor must trigger one.
    before = fingerprint()
    monkeypatch.setitem(master_data.VENDORS, 8, "New Vendor")

    assert fingerprint() != before
