"""One query's page: its normalized SQL, its figures over the range with deploy markers, where
the code sends it from (and the commit that last touched each line), its latest plan with
findings and index advice, the plan diff across the last deploy, and its incidents."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from querywatch.detect.attribution import first_seen_deploy
from querywatch.errors import NotFound
from querywatch.incidents.repository import list_incidents
from querywatch.sketch import LatencySketch
from querywatch.store import rollup_reads
from querywatch.store.base import Tx
from querywatch.web.charts import Series, line_chart
from querywatch.web.pages.blame import site_commits
from querywatch.web.pages.common import buckets, chart_step, deploy_markers, page, readable, rollups
from querywatch.web.pages.plans import plan_view
from querywatch.web.state import WebState
from querywatch.web.timerange import TimeRange

CHART_POINTS = 180  # a week at this many points is whole hours: the store's hourly slots
INCIDENTS_READ = 200


def fingerprint_page(request: Request) -> Response:
    state, rng = readable(request)
    fp = request.path_params["fingerprint"]
    return page(request, "pages/fingerprint.html", fingerprint_context(state, rng, fp))


def fingerprint_context(state: WebState, rng: TimeRange, fp: str) -> dict[str, Any]:
    now = state.clock()
    step = chart_step(rng, now, CHART_POINTS)

    def read(tx: Tx) -> tuple[Any, ...]:
        text = rollup_reads.texts(tx, [fp]).get(fp)
        if text is None:
            raise NotFound(f"no query with fingerprint {fp} in the store")
        by_source = rollup_reads.series_by_source(
            tx, [fp], rng.since, rng.until, step, sketches=True
        )
        return text, by_source, rollup_reads.call_sites(tx, [fp]).get(fp, ())

    (normalized, dialect, first_seen, last_seen), by_source, sites = rollups(state.store, read)
    main, latency = _sources(by_source)
    counts = by_source.get((fp, main), {}) if main else {}
    sketched = by_source.get((fp, latency), {}) if latency else {}
    starts = buckets(rng, step)
    markers = deploy_markers(state, rng)
    deploys = state.store.deploys(environment=state.environment)
    incidents = [
        i for i in list_incidents(state.store, limit=INCIDENTS_READ) if fp in i.fingerprints
    ]
    known: dict[tuple[str, int], str] = {}
    for incident in reversed(incidents):  # the newest incident's blame wins
        for c in incident.culprits:
            if c.fingerprint == fp:
                for k, site in enumerate(c.call_sites[: len(c.commits)]):
                    known[site.path, site.line] = c.commits[k]
    merged = LatencySketch()
    for f in sketched.values():
        if f.sketch is not None:
            merged.merge(f.sketch)
    calls = sum(f.calls for f in counts.values())
    total = sum(f.total_ms for f in counts.values())
    rows = sum(f.rows for f in counts.values())
    born = first_seen_deploy(first_seen, deploys)

    def chart(key: str, title: str, parts: list[Series]) -> Any:
        return line_chart(key, title, parts, rng.since, rng.until, step, markers)

    return {
        "fingerprint": fp,
        "normalized": normalized,
        "dialect": dialect,
        "first_seen": first_seen,
        "last_seen": last_seen,
        "born_with": born,
        "main_source": main,
        "latency_source": latency,
        "summary": {
            "calls": calls,
            "calls_per_s": calls / rng.span if rng.span else None,
            "total_ms": total,
            "mean_ms": total / calls if calls else None,
            "p95_ms": merged.quantile(0.95),
            "rows_per_call": rows / calls if calls else None,
        },
        "calls_chart": chart(
            "calls",
            "Calls per second",
            [Series("calls", "calls", "calls/s", [(b, _per_s(counts, b, step)) for b in starts])],
        ),
        "latency_chart": chart(
            "latency",
            "Latency",
            [
                Series("mean", "mean", "ms", [(b, _mean(counts, b)) for b in starts]),
                Series(
                    "p95",
                    f"p95 ({latency})" if latency and latency != main else "p95",
                    "ms",
                    [(b, _p95(sketched, b)) for b in starts],
                ),
            ],
        ),
        "rows_chart": chart(
            "rows",
            "Rows per call",
            [Series("rows", "rows per call", "rows", [(b, _rows(counts, b)) for b in starts])],
        ),
        "step": step,
        "sites": site_commits(sites, generation=deploys[-1].id if deploys else None, known=known),
        "plans": plan_view(state.store, fp, incidents, deploys),
        "incidents": incidents,
    }


def _sources(
    by_source: dict[tuple[str, str], dict[int, rollup_reads.Figures]],
) -> tuple[str | None, str | None]:
    """The source counts come from (the most calls) and the one latencies come from (the most
    calls among those with sketches: pg_stat_statements has none)."""
    ranked = sorted(
        by_source.items(), key=lambda kv: (sum(f.calls for f in kv[1].values()), kv[0][1])
    )
    main = ranked[-1][0][1] if ranked else None
    with_sketch = [k[1] for k, b in ranked if any(f.sketch is not None for f in b.values())]
    return main, (with_sketch[-1] if with_sketch else None)


def _per_s(counts: dict[int, rollup_reads.Figures], b: int, step: int) -> float:
    f = counts.get(b)
    return f.calls / step if f is not None else 0.0


def _mean(counts: dict[int, rollup_reads.Figures], b: int) -> float | None:
    f = counts.get(b)
    return f.mean_ms if f is not None and f.calls else None


def _p95(sketched: dict[int, rollup_reads.Figures], b: int) -> float | None:
    f = sketched.get(b)
    return f.p95_ms if f is not None else None


def _rows(counts: dict[int, rollup_reads.Figures], b: int) -> float | None:
    f = counts.get(b)
    return f.rows_per_call if f is not None and f.calls else None
