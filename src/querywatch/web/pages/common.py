"""What the page modules share: the server's state and the page's range, reads over the store's
rollups, deploy markers, and rendering with the helpers every template gets."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse

from querywatch.records import DeployMarker
from querywatch.store import rollup_reads
from querywatch.store.base import Retention, Store, Tx
from querywatch.web.auth import require_read
from querywatch.web.charts import Marker, pick_step
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
