"""How stored facts look on a terminal and as JSON. Views only: no analysis here."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rich.table import Table
from rich.text import Text

from querywatch.records import WINDOW_SECONDS, FingerprintSummary
from querywatch.terminal import fits, left_for_text, one_line, plain_table, safe_text


def summary_to_json(row: FingerprintSummary) -> dict[str, Any]:
    return {
        "fingerprint": row.fingerprint,
        "normalized": row.normalized,
        "dialect": row.dialect,
        "calls": row.calls,
        "total_ms": round(row.total_ms, 3),
        "mean_ms": round(row.mean_ms, 3),
        "max_ms": round(row.max_ms, 3),
        "p50_ms": _round(row.p50_ms),
        "p95_ms": _round(row.p95_ms),
        "p99_ms": _round(row.p99_ms),
        "rows": row.rows,
        "errors": row.errors,
        "first_seen": row.first_seen,
        "last_seen": row.last_seen,
        "call_sites": [
            {"path": s.path, "line": s.line, "function": s.function} for s in row.call_sites
        ],
        "release": row.release,  # the release read, or the only one seen ("" = several/unknown)
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.1f}" if value >= 10 else f"{value:.2f}"


def data_seconds(
    rows: Sequence[FingerprintSummary], since: float | None, until: float
) -> float | None:
    """Seconds of ``[since, until)`` that the listed fingerprints' data spans: what `top`'s
    calls/s divides by.

    Not the range asked for: ``--since 1h`` over a store that has two minutes of data would
    show a 200/s statement as 7.8/s. The range selects windows by their start, so the span runs
    from the first window of the listed fingerprints that starts at or after ``since`` to the end
    of their last one that starts before ``until``. ``None`` without a ``since`` (then totals are
    shown, not rates).
    """
    if since is None or not rows:
        return None
    w = WINDOW_SECONDS
    start = max(math.ceil(since / w) * w, min(r.first_seen for r in rows))
    last = min(math.ceil(until / w) * w - w, max(r.last_seen for r in rows))
    return max(last + w - start, 1.0)


FINGERPRINT_CHARS = 12
QUERY_MIN_BESIDE = 40
"""The query column needs this much room to sit beside the fingerprint and call site columns;
with less, both go on a second line under the query."""
QUERY_MIN = 16
SITE_MAX = 40


def top_table(
    rows: Sequence[FingerprintSummary],
    *,
    seconds: float | None,
    title: str,
    width: int | None = None,
) -> Table:
    """The top-fingerprints table shared by `watch` (live) and `top`.

    Laid out for a console ``width`` (None: natural widths): the figures always show whole; the
    query takes what is left. Below about 120 columns (80 on a pipe) the fingerprint and the call
    site go on a dim second line under the query instead of columns of their own.
    """
    headers = ["total ms", "calls/s" if seconds else "calls", "mean ms", "p95 ms"]
    figures = [
        [
            _ms(row.total_ms),
            f"{row.calls / seconds:,.1f}" if seconds else f"{row.calls:,}",
            _ms(row.mean_ms),
            _ms(row.p95_ms),
        ]
        for row in rows
    ]
    widths = [max([len(h), *(len(f[i]) for f in figures)]) for i, h in enumerate(headers)]
    sites = [str(row.call_sites[0]) if row.call_sites else "" for row in rows]
    site_width = min(SITE_MAX, max(len("call site"), *(len(s) for s in sites))) if any(sites) else 0
    beside = [FINGERPRINT_CHARS, *widths, *([site_width] if site_width else [])]
    table = plain_table(title)
    if width is None or fits(width, beside, QUERY_MIN_BESIDE):
        table.add_column("fingerprint", style="dim", no_wrap=True, width=FINGERPRINT_CHARS)
        for header, w in zip(headers, widths, strict=True):
            table.add_column(header, justify="right", no_wrap=True, width=w)
        room = 70 if width is None else left_for_text(width, beside, QUERY_MIN_BESIDE)
        table.add_column("query", overflow="ellipsis", no_wrap=True, max_width=room)
        if site_width:
            table.add_column("call site", overflow="ellipsis", no_wrap=True, width=site_width)
        for row, cells, site in zip(rows, figures, sites, strict=True):
            table.add_row(
                safe_text(row.fingerprint[:FINGERPRINT_CHARS]),
                *(Text(c) for c in cells),
                safe_text(row.normalized),
                *([safe_text(site)] if site_width else []),
            )
        return table
    for header, w in zip(headers, widths, strict=True):
        table.add_column(header, justify="right", no_wrap=True, width=w)
    room = left_for_text(width, widths, QUERY_MIN)
    table.add_column(
        "query (fingerprint, call site)", overflow="ellipsis", no_wrap=True, width=room
    )
    for row, cells, site in zip(rows, figures, sites, strict=True):
        query = safe_text(row.normalized)
        query.append("\n")
        under = f"{one_line(row.fingerprint[:FINGERPRINT_CHARS])}  {one_line(site)}"
        query.append(under.rstrip(), style="dim")
        table.add_row(*(Text(c) for c in cells), query)
    return table
