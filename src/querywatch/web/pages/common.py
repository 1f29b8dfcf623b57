"""What the page modules share: the server's state and the page's range, reads over the store's
rollups, deploy markers, and rendering with the helpers every template gets."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

from querywatch.records import DeployMarker
from querywatch.store import rollup_reads
from querywatch.store.base import Retention, Store, Tx
from querywatch.web.auth import require_read
from querywatch.web.charts import Marker, Series, line_chart, pick_step
from querywatch.web.pages import fmt, sqltext
from querywatch.web.state import WebState, web_state
from querywatch.web.templating import render
from querywatch.web.timerange import TimeRange, range_of

T = TypeVar("T")
RAW_SECONDS = Retention().raw_seconds  # older data is kept as minute rows


def readable(request: Request) -> tuple[WebState, TimeRange]:
    """The server's state and the page's range, once the request may read."""
    require_read(request)
    return web_state(request), range_of(request)


def rollups(store: Store, fn: Callable[[Tx], T]) -> T:
    """``fn`` in one read transaction, on a store that has the dashboard's rollups."""

    def read(tx: Tx) -> T:
        rollup_reads.check_rollups(tx, str(getattr(store, "where", "here")))
        return fn(tx)

    return store.transaction(read, write=False)


def chart_step(rng: TimeRange, now: float, points: int = 360) -> int:
    """The chart step for the range: 10 s buckets where the store keeps them, minutes before."""
    minimum = 60 if rng.since < now - RAW_SECONDS else 10
    return pick_step(rng.span, points, minimum)


def buckets(rng: TimeRange, step: int) -> list[int]:
    """The bucket starts a chart of the range draws (multiples of ``step``)."""
    first = int(rng.since) // step * step
    return list(range(first, int(rng.until), step))


Points = list[tuple[float, float | None]]


@dataclass(frozen=True, slots=True)
class Totals:
    """Every query together over a range: per second of data, per chart bucket."""

    source: str | None  # the source they come from (the one with the most calls)
    db_time: Points  # ms of database time per second
    calls: Points  # calls per second
    total_ms: float


def totals(state: WebState, rng: TimeRange, step: int) -> Totals:
    """Database time and calls per second over the range (a gap where no data was recorded)."""
    source, found = rollups(
        state.store, lambda tx: rollup_reads.totals(tx, rng.since, rng.until, step)
    )
    db_time: Points = []
    calls: Points = []
    for b in buckets(rng, step):
        got = found.get(b)
        seconds = got[3] if got else 0
        db_time.append((b, got[1] / seconds if got and seconds else None))
        calls.append((b, got[0] / seconds if got and seconds else None))
    return Totals(source, db_time, calls, sum(t[1] for t in found.values()))


def db_time_around(
    state: WebState, title: str, since: float, until: float, extra: Sequence[Marker] = ()
) -> Markup:
    """A chart of database time per second over ``[since, until)`` (around a deploy or an
    incident), with the deploys in it and ``extra`` markers."""
    rng = TimeRange(since, until, None)
    now = state.clock()
    step = pick_step(until - since, 240, 60 if since < now - RAW_SECONDS else 10)
    series = Series("db_time", "database time", "ms/s", totals(state, rng, step).db_time)
    markers = [*deploy_markers(state, rng), *extra]
    return line_chart("db_time", title, [series], since, until, step, markers)


def deploy_title(d: DeployMarker) -> str:
    """A marker's hover: version, commit, who (and when)."""
    parts = [f"{'rollback to ' if d.rollback else 'deploy '}{d.version}"]
    if d.commit:
        parts.append(f"commit {d.commit[:10]}")
    if d.author:
        parts.append(f"by {d.author}")
    parts.append(f"at {fmt.stamp(d.started_at)} UTC")
    return ", ".join(parts)


def href(rng: TimeRange, path: str) -> str:
    """A link that keeps the range (``path`` already quoted), for links made outside templates."""
    query = rng.query()
    return f"{path}?{urlencode(query)}" if query else path


def deploy_markers(state: WebState, rng: TimeRange) -> list[Marker]:
    """Every deploy of the server's environment that started in the range."""
    return [
        Marker(
            d.started_at,
            d.id,
            deploy_title(d),
            href(rng, f"/deploys/{quote(d.id, safe='')}"),
            "rollback" if d.rollback else "deploy",
        )
        for d in state.store.deploys(rng.since, rng.until, state.environment)
    ]


def page(
    request: Request, template: str, context: Mapping[str, Any], status: int = 200
) -> HTMLResponse:
    """Render a page template with ``f`` (formatting), ``sql`` (highlighting) and ``quote``."""
    return render(
        request,
        template,
        {"f": fmt, "sql": sqltext, "quote": lambda s: quote(str(s), safe=""), **context},
        status,
    )
