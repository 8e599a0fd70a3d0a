"""`dataplatform demo` end to end: the whole pipeline on moto's server and a real PostgreSQL."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from dataplatform.cli import app
from dataplatform.demo.embedded import EmbeddedPostgres
from dataplatform.demo.run import DemoOptions, DemoResult, run_demo
from etl.lake import lake_stem

pytestmark = pytest.mark.e2e

ROWS = 3000


@pytest.fixture(scope="module")
def demo_run(
    moto_endpoint: str, pg: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory
) -> tuple[DemoResult, str]:
    """One demo run against the session's moto server and a fresh database of its PostgreSQL."""
    database_url = pg.create_database("demo_e2e")
    out = tmp_path_factory.mktemp("demo")
    result = run_demo(
        DemoOptions(rows=ROWS, s3_endpoint=moto_endpoint, database_url=database_url, out=out)
    )
    return result, database_url


def test_every_file_is_loaded_or_quarantined(demo_run: tuple[DemoResult, str]) -> None:
    # The generated month and the sample load; the truncated file is quarantined with its reason.
    result, _ = demo_run
    statuses = {obj.key.rsplit("/", 1)[-1]: obj.status for obj in result.objects}
    assert statuses == {
        "yellow_tripdata_2024-01.parquet": "loaded",
        "yellow_tripdata_2020-07_sample_rides.csv": "loaded",
        "yellow_tripdata_2024-02.parquet": "quarantined",
    }
    month = result.objects[0]
    assert month.rows_in == ROWS
    assert month.rows_clean is not None
    assert month.rows_rejected is not None
    assert month.rows_clean + month.rows_rejected == ROWS
    assert 0 < month.rows_rejected < ROWS * 0.1
    assert "truncated or corrupt" in (result.objects[2].error or "")


def test_lake_holds_every_output_and_the_quarantined_copy(demo_run: tuple[DemoResult, str]) -> None:
    # S3 after the run: raw inputs, processed/rejects/reports per loaded file, quarantine pair.
    result, _ = demo_run
    keys = set(result.lake_keys)
    for name, month in (
        ("yellow_tripdata_2024-01.parquet", "year=2024/month=01"),
        ("yellow_tripdata_2020-07_sample_rides.csv", "year=2020/month=07"),
    ):
        stem = lake_stem(f"raw/yellow/{name}")
        for prefix, suffix in (
            ("processed", "parquet"),
            ("rejects", "parquet"),
            ("reports", "json"),
            ("reports", "html"),
        ):
            assert f"{prefix}/yellow/{month}/{stem}.{suffix}" in keys, (prefix, stem)
    bad = "raw/yellow/yellow_tripdata_2024-02.parquet"
    assert {bad, f"quarantine/{bad}", f"quarantine/{bad}.error.json"} <= keys
    assert len([k for k in keys if k.startswith("raw/")]) == 3


def test_postgres_holds_exactly_the_clean_rows(demo_run: tuple[DemoResult, str]) -> None:
    # taxi.trips has each loaded file's clean rows once; taxi.loads audits all three files.
    result, database_url = demo_run
    with psycopg.connect(database_url) as conn:
        trip_rows = conn.execute("SELECT source_key, count(*) FROM taxi.trips GROUP BY 1")
        trips: dict[str, int] = dict(trip_rows.fetchall())
        load_rows = conn.execute("SELECT source_key, status FROM taxi.loads")
        loads: dict[str, str] = dict(load_rows.fetchall())
    expected = {o.key: o.rows_clean or 0 for o in result.objects if o.status == "loaded"}
    assert trips == expected
    assert loads == {o.key: o.status for o in result.objects}
    assert sum(count for _, _, count in result.trips_per_month) == sum(expected.values())


def test_reports_are_saved_locally(demo_run: tuple[DemoResult, str]) -> None:
    # The HTML quality report of each loaded file is copied out of S3 for the user to open.
    result, _ = demo_run
    pages = [o.report_html for o in result.objects if o.report_html is not None]
    assert len(pages) == 2
    assert all(page.read_text().startswith("<!doctype html>") for page in pages)
    assert result.log_path.read_text().count('"event":"object_processed"') == 3


def test_cli_demo_on_embedded_services_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The main job: one command, its own moto server and PostgreSQL, all stopped and deleted after.
    # Its scratch space is a directory of the test's own, so that other runs' files cannot count;
    # beside the system's (not under pytest's private tmp_path: PostgreSQL runs as another user).
    scratch = Path(tempfile.mkdtemp(prefix="test-demo-scratch-"))
    scratch.chmod(0o755)
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    result = CliRunner().invoke(
        app, ["demo", "--rows", "500", "--out", str(tmp_path / "out")], env={"COLUMNS": "120"}
    )
    assert result.exit_code == 0, result.output
    assert "quarantined" in result.output
    assert "Rows in PostgreSQL" in result.output
    assert sorted(path.name for path in scratch.iterdir()) == []
    scratch.rmdir()


QUERIES_DOC = Path(__file__).parents[2] / "docs" / "queries.md"


def documented_queries(section: str) -> list[str]:
    """The ```sql blocks under the `## <section>` heading of docs/queries.md."""
    text = QUERIES_DOC.read_text()
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```sql\n(.*?)```", body, flags=re.DOTALL)]


def test_every_documented_postgresql_query_returns_rows(demo_run: tuple[DemoResult, str]) -> None:
    # Rule: docs/queries.md's PostgreSQL queries run against what the demo loaded, with rows.
    _, database_url = demo_run
    queries = documented_queries("PostgreSQL")
    assert len(queries) >= 8
    assert any("taxi.trips_described" in query for query in queries)
    with psycopg.connect(database_url) as conn:
        for query in queries:
            rows = conn.execute(query).fetchall()
            assert rows, query


def test_the_demos_example_queries_and_the_named_queries_are_documented() -> None:
    # Rule: what `demo --keep` suggests and what the workgroup saves are in docs/queries.md.
    from components.catalog import named_queries
    from dataplatform.demo.view import EXAMPLE_QUERIES

    def words(text: str) -> str:
        return " ".join(text.split())

    postgres = [words(query) for query in documented_queries("PostgreSQL")]
    for _, query in EXAMPLE_QUERIES:
        assert any(words(query).rstrip(";") in q for q in postgres), query
    athena = [words(query) for query in documented_queries("Athena")]
    for name, (_, query) in named_queries("dataplatform_dev").items():
        assert words(query) in athena, name
