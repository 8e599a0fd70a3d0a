"""A quality report a person would rather look at than read: one self-contained HTML page per load
(inline SVG charts, no scripts, no external files), rendered from the JSON report."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

_STYLE = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:960px;padding:0 1rem;color:#1d2430}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.1rem;margin-top:2rem}
.sub{color:#5b6472;margin-top:0}.tiles{display:flex;gap:1rem;flex-wrap:wrap}
.tile{border:1px solid #d8dde6;border-radius:8px;padding:.7rem 1rem;min-width:140px}
.tile b{display:block;font-size:1.5rem}.bad b{color:#b3261e}.ok b{color:#1b7f3b}
table{border-collapse:collapse;margin-top:.5rem}td,th{padding:.25rem .8rem;text-align:left;
border-bottom:1px solid #eceff4}td.n{text-align:right;font-variant-numeric:tabular-nums}
svg text{font:12px system-ui,sans-serif;fill:#1d2430}.muted{color:#5b6472}
.scroll{overflow-x:auto}table.small td,table.small th{font-size:12px;padding:.2rem .5rem;
white-space:nowrap}a{color:#1b6fb3}
"""


def render_html(report: dict[str, Any]) -> str:
    """The page for one processed input's report (as built by `etl.core.report.build_report`)."""
    title = f"{report['dataset']} {report['month']} · {report['source']}"
    rows_in, rows_rejected = report["rows_in"], report["rows_rejected"]
    rejected_share = rows_rejected / rows_in if rows_in else 0.0
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>Quality report: {escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Quality report</h1><p class=sub>{escape(title)}</p>",
        _provenance(report),
        "<div class=tiles>",
        _tile("rows in", f"{rows_in:,}"),
        _tile("clean", f"{report['rows_clean']:,}", "ok"),
        _tile("rejected", f"{rows_rejected:,} ({rejected_share:.1%})", "bad"),
        "</div>",
        "<h2>Pickups</h2>",
        _pickup_table(report),
        "<h2>Reject reasons</h2>",
        _reasons(report) if report["reasons"] else "<p class=muted>No rejects.</p>",
    ]
    samples = report.get("reject_samples") or []
    if samples:
        parts += ["<h2>Sample rejected rows</h2>", _samples_table(samples)]
    parts += [
        "<h2>Clean trips per day</h2>",
        _column_chart(report.get("trips_per_day", {})),
        "<h2>Schema notes</h2>",
        _schema_table(report["schema"]),
        "<h2>Null rate per column</h2>",
        _null_table(report),
    ]
    settings = report.get("settings")
    if settings:
        parts += ["<h2>Rule thresholds</h2>", _table(("setting", "value"), _flat(settings))]
    timings = report.get("timings_ms")
    if timings:
        parts += ["<h2>Timings</h2>", _table(("step", "ms"), list(timings.items()))]
    parts.append("</body></html>\n")
    return "".join(parts)


def _provenance(report: dict[str, Any]) -> str:
    provenance = report.get("provenance") or {}
    if not provenance:
        return ""
    return (
        f"<p class=muted>Generated {escape(str(provenance.get('generated_at', '')))} from "
        f"{escape(str(provenance.get('source', report['source'])))} by dataplatform "
        f"{escape(str(provenance.get('etl_version', 'unknown')))}</p>"
    )


def _when(value: str | None) -> str:
    return value.replace("T", " ")[:16] if value else "none"


def _pickup_table(report: dict[str, Any]) -> str:
    ranges = report.get("pickup_range") or {}
    window = ranges.get("month_window") or [None, None]
    grace = (report.get("settings") or {}).get("month_grace_hours")
    rows = [
        (
            "all rows",
            f"{_when(ranges.get('all_rows', {}).get('min'))} → "
            f"{_when(ranges.get('all_rows', {}).get('max'))}",
        ),
        (
            "clean rows",
            f"{_when(ranges.get('clean_rows', {}).get('min'))} → "
            f"{_when(ranges.get('clean_rows', {}).get('max'))}",
        ),
        (
            "month window",
            f"{_when(window[0])} → {_when(window[1])}"
            + (f" (± {grace:g} h grace)" if isinstance(grace, int | float) else ""),
        ),
    ]
    return _table(("", ""), rows)


def _reasons(report: dict[str, Any]) -> str:
    counts: dict[str, int] = report["reasons"]
    meanings: dict[str, str] = report.get("reason_meanings") or {}
    rows_in, rows_rejected = report["rows_in"] or 1, report["rows_rejected"] or 1
    head = "".join(
        f"<th>{cell}</th>" for cell in ("reason", "rows", "of all rows", "of rejects", "meaning")
    )
    body = "".join(
        f"<tr><td>{escape(reason)}</td><td class=n>{count:,}</td>"
        f"<td class=n>{count / rows_in:.1%}</td><td class=n>{count / rows_rejected:.1%}</td>"
        f"<td>{escape(meanings.get(reason, ''))}</td></tr>"
        for reason, count in sorted(counts.items(), key=lambda kv: -kv[1])
    )
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return _bar_chart(counts) + table


def _samples_table(samples: list[dict[str, Any]]) -> str:
    first = ["source_row", "reject_reason"]
    columns = first + [
        name
        for name in samples[0]
        if name not in first and any(row.get(name) is not None for row in samples)
    ]
    head = "".join(f"<th>{escape(name)}</th>" for name in columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{escape(str(row.get(name) or ''))}</td>" for name in columns)
        + "</tr>"
        for row in samples
    )
    return (
        "<div class=scroll><table class=small><thead><tr>"
        f"{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def _null_table(report: dict[str, Any]) -> str:
    absent = set(report["schema"].get("missing_optional", []))
    rows = [
        (name, "absent from the file" if name in absent else f"{rate:.2%}")
        for name, rate in report["null_rate"].items()
        if rate > 0 or name in absent
    ]
    return _table(("column", "null rate"), rows)


def _flat(settings: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in settings.items():
        if isinstance(value, dict):
            rows += _flat(value, f"{prefix}{key}.")
        elif isinstance(value, list):
            rows.append((f"{prefix}{key}", ", ".join(str(item) for item in value)))
        else:
            rows.append((f"{prefix}{key}", value))
    return rows


def _tile(label: str, value: str, kind: str = "") -> str:
    return f"<div class='tile {kind}'><b>{escape(value)}</b>{escape(label)}</div>"


def _bar_chart(counts: dict[str, int]) -> str:
    width, bar_height, label_width = 900, 22, 230
    largest = max(counts.values())
    height = bar_height * len(counts) + 8
    bars = []
    for row, (reason, count) in enumerate(sorted(counts.items(), key=lambda kv: -kv[1])):
        y = row * bar_height + 4
        length = max(1.0, (width - label_width - 90) * count / largest)
        bars.append(
            f"<text x=0 y={y + 15}>{escape(reason)}</text>"
            f"<rect x={label_width} y={y} width={length:.1f} height={bar_height - 6} fill=#b3261e>"
            f"<title>{escape(reason)}: {count:,}</title></rect>"
            f"<text x={label_width + length + 6:.1f} y={y + 15}>{count:,}</text>"
        )
    return f"<svg viewBox='0 0 {width} {height}' width=100% role=img>{''.join(bars)}</svg>"


def _column_chart(per_day: dict[str, int]) -> str:
    if not per_day:
        return "<p class=muted>No clean trips.</p>"
    width, height, bottom, left, top = 900, 240, 40, 64, 12
    top_value = _nice_ceiling(max(per_day.values()))
    plot_height = height - bottom - top
    step = (width - left - 10) / len(per_day)
    parts = []
    for fraction in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = top + plot_height * (1 - fraction)
        parts.append(
            f"<line x1={left} x2={width - 10} y1={y:.1f} y2={y:.1f} stroke=#d8dde6></line>"
            f"<text x={left - 6} y={y + 4:.1f} text-anchor=end>{top_value * fraction:,.0f}</text>"
        )
    for index, (day, count) in enumerate(per_day.items()):
        column_height = plot_height * count / top_value
        x = left + index * step
        parts.append(
            f"<rect x={x + 1:.1f} y={top + plot_height - column_height:.1f} "
            f"width={max(step - 2, 1):.1f} height={column_height:.1f} fill=#1b6fb3>"
            f"<title>{escape(day)}: {count:,}</title></rect>"
        )
        if index % max(1, len(per_day) // 8) == 0:
            parts.append(
                f"<text x={x + step / 2:.1f} y={height - bottom + 16} text-anchor=middle>"
                f"{escape(day[5:])}</text>"
            )
    parts.append(
        f"<text x=12 y={top + plot_height / 2:.1f} text-anchor=middle "
        f"transform='rotate(-90 12 {top + plot_height / 2:.1f})'>trips per day</text>"
        f"<text x={left} y={height - 4}>pickup date (MM-DD)</text>"
    )
    return f"<svg viewBox='0 0 {width} {height}' width=100% role=img>{''.join(parts)}</svg>"


def _nice_ceiling(value: int) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10ⁿ at or above `value`: a round top for an axis."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for factor in (1, 2, 2.5, 5, 10):
        if factor * magnitude >= value:
            return float(factor * magnitude)
    return float(10 * magnitude)


def _schema_table(schema: dict[str, Any]) -> str:
    rows = [
        ("location columns", schema["location_mode"]),
        ("renamed", ", ".join(f"{a} → {b}" for a, b in schema["renamed"].items()) or "none"),
        ("cast", ", ".join(schema["cast"]) or "none"),
        ("missing optional", ", ".join(schema["missing_optional"]) or "none"),
        ("unexpected", ", ".join(schema["unexpected"]) or "none"),
        (
            "renamed in rejects",
            ", ".join(f"{a} → {b}" for a, b in schema.get("renamed_in_rejects", {}).items())
            or "none",
        ),
        ("blank lines", str(schema["blank_lines"])),
    ]
    return _table(("", ""), rows)


def _table(header: tuple[str, str], rows: list[tuple[str, Any]]) -> str:
    if not rows:
        return "<p class=muted>None.</p>"
    head = "".join(f"<th>{escape(cell)}</th>" for cell in header)
    body = "".join(
        f"<tr><td>{escape(str(key))}</td>"
        f"<td{' class=n' if _is_number(value) else ''}>{escape(str(value))}</td></tr>"
        for key, value in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) or (isinstance(value, str) and value[:1].isdigit())


@dataclass(frozen=True)
class IndexEntry:
    """One input on an output directory's index page: its report's counts, or why it was
    quarantined."""

    name: str
    href: str
    """Where the entry links to, relative to the index page."""
    dataset: str = ""
    month: str = ""
    rows_in: int = 0
    rows_clean: int = 0
    rows_rejected: int = 0
    quarantined: str | None = None
    """The quarantine reason; None for a processed input."""


def render_index(entries: list[IndexEntry]) -> str:
    """The index page of an output directory: a row per input, linking its report."""
    processed = [entry for entry in entries if entry.quarantined is None]
    quarantined = [entry for entry in entries if entry.quarantined is not None]
    rows_in = sum(entry.rows_in for entry in processed)
    rejected = sum(entry.rows_rejected for entry in processed)
    head = "".join(
        f"<th>{escape(cell)}</th>"
        for cell in ("file", "dataset", "month", "rows in", "clean", "rejected", "rejected %")
    )
    body = "".join(
        f"<tr><td><a href='{escape(entry.href)}'>{escape(entry.name)}</a></td>"
        f"<td>{escape(entry.dataset)}</td><td>{escape(entry.month)}</td>"
        f"<td class=n>{entry.rows_in:,}</td><td class=n>{entry.rows_clean:,}</td>"
        f"<td class=n>{entry.rows_rejected:,}</td>"
        f"<td class=n>{entry.rows_rejected / entry.rows_in if entry.rows_in else 0:.1%}</td></tr>"
        for entry in processed
    )
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>Quality reports</title><style>{_STYLE}</style></head><body>",
        "<h1>Quality reports</h1>",
        f"<p class=sub>{len(processed)} file(s) processed, {len(quarantined)} quarantined; "
        f"{rows_in:,} rows in, {rejected:,} rejected</p>",
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        if processed
        else "<p class=muted>No processed files.</p>",
    ]
    if quarantined:
        parts += [
            "<h2>Quarantined</h2>",
            "<table><thead><tr><th>file</th><th>why</th></tr></thead><tbody>",
            *(
                f"<tr><td><a href='{escape(entry.href)}'>{escape(entry.name)}</a></td>"
                f"<td>{escape(entry.quarantined or '')}</td></tr>"
                for entry in quarantined
            ),
            "</tbody></table>",
        ]
    parts.append("</body></html>\n")
    return "".join(parts)
