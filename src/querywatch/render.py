"""How stored facts look on a terminal and as JSON. Views only: no analysis here."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.table import Table

from querywatch.records import WINDOW_SECONDS, FingerprintSummary


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
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False)


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
    show a 200/s statement as 7.8/s. The span runs from the first window of the listed
    fingerprints (at the earliest ``since``) to the end of their last one (at the latest
    ``until``). ``None`` without a ``since`` (then totals are shown, not rates).
    """
    if since is None or not rows:
        return None
    start = max(since, min(r.first_seen for r in rows))
    end = min(until, max(r.last_seen for r in rows) + WINDOW_SECONDS)
    return max(end - start, 1.0)


def top_table(rows: Sequence[FingerprintSummary], *, seconds: float | None, title: str) -> Table:
    """The top-fingerprints table shared by `watch` (live) and `top`."""
    table = Table(title=title, title_justify="left", expand=False)
    table.add_column("fingerprint", style="dim", no_wrap=True)
    table.add_column("total ms", justify="right")
    table.add_column("calls/s" if seconds else "calls", justify="right")
    table.add_column("mean ms", justify="right")
    table.add_column("p95 ms", justify="right")
    table.add_column("query", overflow="ellipsis", no_wrap=True, max_width=70)
    table.add_column("call site", overflow="ellipsis", no_wrap=True, max_width=40)
    for row in rows:
        rate = f"{row.calls / seconds:,.1f}" if seconds else f"{row.calls:,}"
        site = str(row.call_sites[0]) if row.call_sites else ""
        table.add_row(
            row.fingerprint[:12],
            _ms(row.total_ms),
            rate,
            _ms(row.mean_ms),
            _ms(row.p95_ms),
            row.normalized,
            site,
        )
    return table
