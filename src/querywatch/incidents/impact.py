"""What an incident cost users, from the middleware's request windows.

The middleware keeps, per route and 10 s bucket, the request count, the error count, a latency
sketch of every request and two user sets: users seen and users who saw an error or a response
slower than the SLO. Users are therefore exact (unions of sets). Requests slower than the SLO are
not counted per window, so they are read off the sketch: every request in a bucket whose
representative value exceeds ``slo_ms`` counts as slow. Buckets are 1% wide, so only requests
within about 1% of the SLO can be misjudged. An errored request is in the sketch too; a request
that was both an error and slow is counted twice, so per window the sum is capped at the request
count (errors are usually fast, so the overlap is small).
"""

from __future__ import annotations

from collections.abc import Iterable

from querywatch.config import DEFAULT_SLO_MS
from querywatch.incidents.model import Impact
from querywatch.records import RequestWindow, window_start
from querywatch.sketch import LatencySketch
from querywatch.store.base import Store


def slow_requests(sketch: LatencySketch | None, slo_ms: float) -> int:
    """Requests in ``sketch`` slower than ``slo_ms``, to the sketch's 1% accuracy."""
    if sketch is None:
        return 0
    return sum(n for key, n in sketch.buckets.items() if _bucket_value(key) > slo_ms)


def _bucket_value(key: int) -> float:
    # The value LatencySketch.quantile reports for a bucket; reuse it so both agree.
    return LatencySketch({key: 1}).quantile(0.5) or 0.0


def impact_of(
    windows: Iterable[RequestWindow],
    slo_ms: float = DEFAULT_SLO_MS,
    *,
    since: float | None = None,
    until: float | None = None,
) -> Impact:
    """Sum the windows: requests, failed requests (errors + slow), users and affected users."""
    requests = failed = 0
    users: set[str] = set()
    affected: set[str] = set()
    for w in windows:
        requests += w.requests
        failed += min(w.requests, w.errors + slow_requests(w.sketch, slo_ms))
        users |= w.users
        affected |= w.failed_users
    return Impact(
        requests=requests,
        failed_requests=failed,
        users=len(users),
        affected_users=len(affected),
        slo_ms=slo_ms,
        since=since,
        until=until,
    )


def impact_between(
    store: Store,
    since: float,
    until: float,
    slo_ms: float = DEFAULT_SLO_MS,
    route: str | None = None,
) -> Impact:
    """Impact over the request windows whose buckets overlap [since, until).

    Whole buckets count: the one holding ``since`` is included, so a range starting mid-bucket
    (a deploy at 14:02:07) does not miss the requests of its first seconds.
    """
    windows = store.request_windows(route=route, since=window_start(since), until=until)
    return impact_of(windows, slo_ms, since=since, until=until)
