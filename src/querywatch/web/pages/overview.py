"""The overview: database time and calls per second over the range with every deploy marked,
the open incidents, the latest incident's triage verdict, and the queries that cost the most."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from querywatch.incidents.model import Status
from querywatch.incidents.repository import list_incidents
from querywatch.store import rollup_reads
from querywatch.store.base import Tx
from querywatch.web.charts import Series, line_chart, pick_step, sparkline
from querywatch.web.pages.common import (
    buckets,
    chart_step,
    deploy_markers,
    href,
    page,
    readable,
    rollups,
    totals,
)
from querywatch.web.state import WebState
from querywatch.web.timerange import TimeRange

TOP_QUERIES = 10
OPEN_STATUSES: tuple[Status, ...] = ("open", "acknowledged", "mitigated")


def overview(request: Request) -> Response:
    state, rng = readable(request)
    return page(request, "pages/overview.html", overview_context(state, rng))


def overview_context(state: WebState, rng: TimeRange) -> dict[str, Any]:
    now = state.clock()
    step = chart_step(rng, now)
    spark_step = pick_step(rng.span, 60, step)
    markers = deploy_markers(state, rng)

    def read(tx: Tx) -> tuple[Any, ...]:
        top = rollup_reads.top(tx, rng.since, rng.until, TOP_QUERIES)
        fps = [f.fingerprint for f in top]
        spark = rollup_reads.series(tx, fps, rng.since, rng.until, spark_step)
        return top, spark, rollup_reads.texts(tx, fps)

    every = totals(state, rng, step)
    source, all_ms = every.source, every.total_ms
    top, spark, texts = rollups(state.store, read)
    spark_starts = buckets(rng, spark_step)
    rows = []
    for f in top:
        normalized = texts.get(f.fingerprint, ("", "", 0.0, 0.0))[0]
        by_bucket = spark.get(f.fingerprint, {})
        values = [
            (by_bucket[b].total_ms / spark_step) if b in by_bucket else 0.0 for b in spark_starts
        ]
        rows.append(
            {
                "figures": f,
                "normalized": normalized,
                "share": f.total_ms / all_ms if all_ms and f.source == source else None,
                "href": href(rng, f"/fingerprints/{quote(f.fingerprint, safe='')}"),
                "spark": sparkline(
                    "db_time", f"database time of {f.fingerprint} over the range", values
                ),
            }
        )
    incidents = list_incidents(state.store, status=OPEN_STATUSES, limit=20)
    latest = list_incidents(state.store, limit=1)
    return {
        "db_chart": line_chart(
            "db_time",
            "Database time per second",
            [Series("db_time", "database time", "ms/s", every.db_time)],
            rng.since,
            rng.until,
            step,
            markers,
        ),
        "calls_chart": line_chart(
            "calls",
            "Calls per second",
            [Series("calls", "calls", "calls/s", every.calls)],
            rng.since,
            rng.until,
            step,
            markers,
        ),
        "source": source,
        "step": step,
        "deploys": markers,
        "top": rows,
        "open_incidents": incidents,
        "latest": latest[0] if latest else None,
    }
