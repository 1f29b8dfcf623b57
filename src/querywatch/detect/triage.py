"""Is it the database? One sentence, with the figures, before anyone chases hardware or network.

In the report people looked at hardware, the network and the application layer before the
database. Triage answers first: the share of request time spent in the database (from the
middleware's request windows) before and after a change, plus the server's own health snapshot.
When only database-side statistics exist (pg_stat_statements, no middleware), it compares the
database time per second instead and says what is missing. docs/triage.md explains each figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from querywatch.detect.baseline import coverage
from querywatch.detect.model import Detection, Triage
from querywatch.detect.wording import short_sql
from querywatch.store.base import Store

# Thresholds (documented in docs/triage.md).
SHARE_BOTTLENECK = 0.50
"""Requests spending at least half their time in the database: the database is the bottleneck."""
SHARE_RISE_FACTOR = 2.0
SHARE_RISE_POINTS = 0.20
"""...or a share that at least doubled and rose by at least 20 points (e.g. 15% -> 40%)."""
DB_RATE_RISE_FACTOR = 2.0
DB_RATE_RISE_MS = 500.0
"""Without middleware: database time per second at least doubled and grew by at least half a
busy backend (500 ms per second)."""
LOCK_WAITERS = 3
CONNECTION_USE = 0.90
"""Server health alone says "bottleneck": this many sessions waiting on locks, or this share of
``max_connections`` in use (new requests are about to queue for a connection)."""


def triage(
    store: Store,
    *,
    before: tuple[float, float],
    after: tuple[float, float],
    health: Mapping[str, Any] | None,
    event: str = "the deploy",
    detections: Sequence[Detection] = (),
) -> Triage:
    """Whether the database is the bottleneck in ``after`` compared with ``before``.

    ``before`` and ``after`` are [start, end) epoch-second ranges over window starts; ``health``
    is a :func:`querywatch.detect.health.health_snapshot` (or ``None`` / the SQLite stand-in).
    ``event`` names what separates the two periods in the sentence ("after the deploy").
    Victims among ``detections`` (queries only slowed by the load) are named as such, so nobody
    chases them as causes.
    """
    found = _triage(store, before=before, after=after, health=health, event=event)
    victims = _victims(detections)
    if victims:
        found = replace(found, verdict=found.verdict[:-1] + f"; {victims}.")
    return found


def _victims(detections: Sequence[Detection]) -> str:
    """ "N queries only slowed because the database got busier (victims, not causes): …"."""
    sqls = list(
        dict.fromkeys(
            short_sql(d.normalized or d.fingerprint or "") for d in detections if d.kind == "victim"
        )
    )
    if not sqls:
        return ""
    which = "query" if len(sqls) == 1 else "queries"
    shown = ", ".join(sqls[:3]) + (f" and {len(sqls) - 3} more" if len(sqls) > 3 else "")
    return (
        f"{len(sqls)} {which} only slowed because the database got busier (victims, not "
        f"causes): {shown}"
    )


def _triage(
    store: Store,
    *,
    before: tuple[float, float],
    after: tuple[float, float],
    health: Mapping[str, Any] | None,
    event: str,
) -> Triage:
    share_before = _db_share(store, before)
    share_after = _db_share(store, after)
    snapshot = dict(health) if health else {}
    figures = _health_figures(snapshot)
    saturated = _saturated(snapshot)

    if share_after is not None:
        rose = (
            share_before is not None
            and share_after >= SHARE_RISE_FACTOR * share_before
            and share_after - share_before >= SHARE_RISE_POINTS
        )
        # Database time per second counts too: requests that queue for a busy database (for a
        # pooled connection, a lock, the GIL of an embedded one) spend that wait outside it.
        rate_before, rate_after = _db_rate(store, before), _db_rate(store, after)
        busier = (
            rate_before is not None
            and rate_after is not None
            and rate_after >= DB_RATE_RISE_FACTOR * rate_before
            and rate_after - rate_before >= DB_RATE_RISE_MS
        )
        bottleneck = share_after >= SHARE_BOTTLENECK or rose or busier or saturated is not None
        was = f"was {_pct(share_before)}" if share_before is not None else "no figure before"
        if bottleneck and busier and not (share_after >= SHARE_BOTTLENECK or rose):
            assert rate_after is not None and rate_before is not None
            head = (
                f"The database is the bottleneck: it worked {_rate(rate_after)} per second after "
                f"{event} (was {_rate(rate_before)}) while requests spent {_pct(share_after)} "
                f"of their time in it ({was}), the rest largely waiting for it"
            )
            verdict = _sentence(head, figures, saturated)
        elif bottleneck:
            head = (
                f"The database is the bottleneck: requests spent {_pct(share_after)} of their "
                f"time in it after {event} ({was})"
            )
            verdict = _sentence(head, figures, saturated)
        else:
            head = (
                f"The database is not the bottleneck: requests spent {_pct(share_after)} of their "
                f"time in it ({was})"
            )
            verdict = _sentence(head, figures, None, "look at the application or the hosts")
        return Triage(share_before, share_after, verdict, bottleneck, snapshot)

    # No middleware timings for the later period: judge by database time per second.
    rate_before = _db_rate(store, before)
    rate_after = _db_rate(store, after)
    missing = "no request timings from the middleware, so the share of request time is unknown"
    if rate_after is None and not figures:
        verdict = (
            "Cannot tell whether the database is the bottleneck: no request timings from the "
            "middleware, no statement statistics and no server health."
        )
        return Triage(share_before, None, verdict, None, snapshot)
    if rate_after is None:
        bottleneck = saturated is not None
        head = (
            "The database is the bottleneck judging by server health alone"
            if bottleneck
            else "The database does not look like the bottleneck judging by server health alone"
        )
        head += f": {figures[0]}"
        tail = "no statement statistics and " + missing
        verdict = _sentence(head, figures[1:], saturated, tail)
        return Triage(share_before, None, verdict, bottleneck, snapshot)

    rose = (
        rate_before is not None
        and rate_after >= DB_RATE_RISE_FACTOR * rate_before
        and rate_after - rate_before >= DB_RATE_RISE_MS
    )
    bottleneck = rose or saturated is not None
    was = f"was {_rate(rate_before)}" if rate_before is not None else "no figure before"
    if bottleneck:
        head = f"The database is the bottleneck: it worked {_rate(rate_after)} per second after "
        head += f"{event} ({was})"
        verdict = _sentence(head, figures, saturated, missing)
    else:
        head = "The database does not look like the bottleneck: it worked "
        head += f"{_rate(rate_after)} per second ({was})"
        verdict = _sentence(head, figures, None, missing, "look at the application or the hosts")
    return Triage(share_before, None, verdict, bottleneck, snapshot)


def _db_share(store: Store, span: tuple[float, float]) -> float | None:
    """Sum of database time over sum of request time, from the middleware's request windows."""
    windows = store.request_windows(since=span[0], until=span[1])
    total = sum(w.total_ms for w in windows)
    if total <= 0:
        return None
    return min(sum(w.db_ms for w in windows) / total, 1.0)


def _db_rate(store: Store, span: tuple[float, float]) -> float | None:
    """Database milliseconds spent per second of data over the range (all fingerprints).

    Per second *of data*, not of the range: an agent started a minute before a deploy has one
    minute of "before", and dividing that minute's work by the half hour asked for would make a
    busy database look idle (34 ms/s read as 1 ms/s). Buckets without any window are gaps, as in
    :mod:`querywatch.detect.baseline`; the unfinished bucket at the range's end counts for the
    part that has elapsed.
    """
    windows = store.statement_windows(since=span[0], until=span[1])
    seconds = coverage((w.window_start for w in windows), span[0], span[1], now=span[1])
    if not windows or seconds <= 0:
        return None
    return sum(w.total_ms for w in windows) / seconds


def _health_figures(health: Mapping[str, Any]) -> list[str]:
    """The server figures worth a place in the sentence, when a live snapshot is at hand."""
    if not health.get("available"):
        return []
    figures = []
    connections = health.get("connections") or {}
    by_state = connections.get("by_state") or {}
    figures.append(f"{int(by_state.get('active', 0))} sessions active")
    waits = health.get("lock_waits") or {}
    figures.append(f"{int(waits.get('waiting', 0))} waiting on locks")
    ratio = health.get("cache_hit_ratio")
    if ratio is not None:
        figures.append(f"cache hit {float(ratio) * 100:.1f}%")
    return figures


def _saturated(health: Mapping[str, Any]) -> str | None:
    """Why server health alone makes the database the bottleneck, or ``None``."""
    if not health.get("available"):
        return None
    waiting = int((health.get("lock_waits") or {}).get("waiting", 0))
    if waiting >= LOCK_WAITERS:
        return "sessions are queueing on locks"
    connections = health.get("connections") or {}
    total, limit = connections.get("total"), connections.get("max")
    if total is not None and limit and int(total) >= CONNECTION_USE * int(limit):
        return f"{int(total)} of {int(limit)} connections in use"
    return None


def _sentence(head: str, figures: list[str], saturated: str | None, *tails: str) -> str:
    text = ", ".join([head, *figures])
    if saturated:
        text += f" ({saturated})"
    for tail in tails:
        text += f"; {tail}"
    return text + "."


def _pct(share: float) -> str:
    if 0 < share < 0.005:
        return "<1%"
    return f"{share * 100:.0f}%"


def _rate(ms_per_s: float) -> str:
    return f"{ms_per_s / 1000:.2f} s" if ms_per_s >= 1000 else f"{ms_per_s:.0f} ms"
