"""Reading windows: rankings (``top``) and the statement, request and repeat windows in time order.

Reads cover both resolutions (10 s and minute rows never hold the same minute) and, where they
sum statement windows, take one source per fingerprint, so two sources watching one database
never count a call twice. ``release`` reads one release's rows; without it, the rows of every
release in a bucket are summed into one window, as before releases were kept. A store older than
the release column (read-only, not migrated) reads as release ``''`` throughout.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from querywatch.records import (
    CallSite,
    FingerprintSummary,
    RepeatWindow,
    RequestWindow,
    StatementWindow,
)
from querywatch.sketch import LatencySketch
from querywatch.store.base import SortKey, Tx


def _call_sites(tx: Tx, fingerprints: Sequence[str]) -> dict[str, tuple[CallSite, ...]]:
    found: dict[str, list[CallSite]] = {}
    for start in range(0, len(fingerprints), 500):
        chunk = fingerprints[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        for fp, path, line, function in tx.rows(
            "SELECT fingerprint, path, line, function FROM call_sites "
            f"WHERE fingerprint IN ({marks}) ORDER BY fingerprint, path, line, function",
            chunk,
        ):
            found.setdefault(fp, []).append(CallSite(path, int(line), function))
    return {fp: tuple(sites) for fp, sites in found.items()}


def top(
    tx: Tx,
    since: float | None = None,
    until: float | None = None,
    sort: SortKey = "total",
    limit: int = 20,
    release: str | None = None,
    *,
    has_release: bool = True,
) -> list[FingerprintSummary]:
    rel = _release_column(has_release, "w.")
    where, params = _where("fingerprint", None, since, until, prefix="w.")
    where, params = _and_release(where, params, rel, release)
    sql = (
        "SELECT w.fingerprint, f.normalized, f.dialect, SUM(w.calls), SUM(w.total_ms), "
        "MAX(w.max_ms), SUM(w.rows), SUM(w.errors), f.first_seen, f.last_seen, "
        f"qw_sketch_agg(w.sketch), w.source, MIN({rel}), MAX({rel}) "
        f"FROM windows w JOIN fingerprints f ON f.fingerprint = w.fingerprint{where} "
        "GROUP BY w.fingerprint, w.source, f.normalized, f.dialect, f.first_seen, f.last_seen"
    )

    summaries = []
    rows = tx.rows(sql, params)
    chosen_source = _one_source_each((r[0], r[11], int(r[3])) for r in rows)
    for fp, norm, dialect, calls, total, mx, nrows, errors, first, last, sk, src, lo, hi in rows:
        if chosen_source[fp] != src:
            continue
        sketch = _sketch(sk) or LatencySketch()
        summaries.append(
            FingerprintSummary(
                fp,
                norm,
                dialect,
                int(calls),
                float(total),
                float(mx),
                int(nrows),
                int(errors),
                float(first),
                float(last),
                p50_ms=sketch.quantile(0.5),
                p95_ms=sketch.quantile(0.95),
                p99_ms=sketch.quantile(0.99),
                source=src,
                release=lo if lo == hi else "",
            )
        )
    # Ties broken by fingerprint so the ranking is stable between runs and backends.
    summaries.sort(key=lambda s: s.fingerprint)
    summaries.sort(key=lambda s: _sort_value(s, sort), reverse=True)
    chosen = summaries[:limit]
    sites = _call_sites(tx, [s.fingerprint for s in chosen])
    for s in chosen:
        s.call_sites = sites.get(s.fingerprint, ())
    return chosen


def statement_windows(
    tx: Tx,
    fingerprint: str | None = None,
    since: float | None = None,
    until: float | None = None,
    source: str | None = None,
    release: str | None = None,
    *,
    has_release: bool = True,
) -> list[StatementWindow]:
    """Windows of both resolutions in time order; a minute row starts on its minute.

    One source per fingerprint (see :meth:`Store.statement_windows`), or only ``source``; one
    release, or every release's rows of a bucket summed. Each window carries its fingerprint's
    known call sites (they are kept per fingerprint).
    """
    names = _names(tx, fingerprint, since)  # first: a PostgreSQL Tx has one cursor
    sql, params = _statement_sql(fingerprint, since, until, source, release, has_release)
    windows = list(_statement_windows(tx.each(sql, params), names))
    if source is None and len({w.source for w in windows}) > 1:
        chosen = _one_source_each((w.fingerprint, w.source, w.calls) for w in windows)
        windows = [w for w in windows if chosen[w.fingerprint] == w.source]
    sites = _call_sites(tx, sorted({w.fingerprint for w in windows}))
    for w in windows:
        w.call_sites = sites.get(w.fingerprint, ())
    return windows


def iter_statement_windows(
    tx: Tx,
    since: float | None = None,
    until: float | None = None,
    source: str | None = None,
    release: str | None = None,
    *,
    fingerprint: str | None = None,
    has_release: bool = True,
) -> Iterator[StatementWindow]:
    """The windows :func:`statement_windows` returns, in the same order, one at a time from the
    cursor: a reader that folds them (detection, after every poll) never holds them all.

    The source of each fingerprint is chosen first by one aggregate over the same rows; the
    windows carry no call sites.
    """
    chosen = (
        {}
        if source is not None
        else _chosen_sources(tx, fingerprint, since, until, release, has_release)
    )
    names = _names(tx, fingerprint, since)
    sql, params = _statement_sql(fingerprint, since, until, source, release, has_release)
    for w in _statement_windows(tx.each(sql, params), names):
        if chosen.get(w.fingerprint, w.source) == w.source:
            yield w


def _statement_sql(
    fingerprint: str | None,
    since: float | None,
    until: float | None,
    source: str | None,
    release: str | None,
    has_release: bool,
) -> tuple[str, list[object]]:
    rel = _release_column(has_release, "w.")
    where, params = _where("fingerprint", fingerprint, since, until, prefix="w.")
    if source is not None:
        where += (" AND" if where else " WHERE") + " w.source = ?"
        params.append(source)
    where, params = _and_release(where, params, rel, release)
    # Rows of one bucket that differ only by release come out next to each other, to be summed.
    # No join: each fingerprint's text comes once from _names, not once per row.
    sql = (
        "SELECT w.fingerprint, w.window_start, w.calls, w.total_ms, w.max_ms, w.source, "
        f"w.min_ms, w.rows, w.errors, w.shared_blks_hit, w.shared_blks_read, w.sketch, {rel} "
        f"FROM windows w{where} "
        f"ORDER BY w.window_start, w.fingerprint, w.resolution, w.source, {rel}"
    )
    return sql, params


def _names(tx: Tx, fingerprint: str | None, since: float | None) -> dict[str, tuple[str, str, str]]:
    """``(fingerprint, normalized, dialect)`` of every fingerprint that may have windows since
    ``since``: a fingerprint's ``last_seen`` is its latest window's start, so one whose
    ``last_seen`` is older has none there. A window without its fingerprint row is not read
    (as the join it replaces did)."""
    where, params = _where("fingerprint", fingerprint, None, None)
    if since is not None:
        where += (" AND" if where else " WHERE") + " last_seen >= ?"
        params.append(since)
    return {
        str(fp): (str(fp), str(norm), str(dialect))
        for fp, norm, dialect in tx.each(
            f"SELECT fingerprint, normalized, dialect FROM fingerprints{where}", params
        )
    }


def _statement_windows(
    rows: Iterable[tuple[Any, ...]], names: dict[str, tuple[str, str, str]]
) -> Iterator[StatementWindow]:
    """Rows as windows, in row order; rows of one bucket, fingerprint and source summed.

    ``names`` (from :func:`_names`) gives each window its fingerprint's text and dialect, one
    copy per fingerprint however many windows it has.
    """
    shared: dict[object, Any] = {}  # bucket starts, sources, releases: a few distinct values
    pending: StatementWindow | None = None
    for fp, start, calls, total, mx, src, mn, nrows, errors, hit, blks_read, sk, rls in rows:
        if pending is not None:
            if (
                pending.fingerprint == fp
                and pending.window_start == start
                and pending.source == src
            ):
                _sum_statement(
                    pending, calls, total, mx, mn, nrows, errors, hit, blks_read, sk, rls
                )
                continue
            yield pending
            pending = None
        named = names.get(fp)
        if named is None:
            continue
        pending = StatementWindow(
            named[0],
            named[1],
            shared.setdefault(int(start), int(start)),
            int(calls),
            float(total),
            float(mx),
            named[2],
            shared.setdefault(src, src),
            None if mn is None else float(mn),
            int(nrows),
            int(errors),
            int(hit),
            int(blks_read),
            _sketch(sk),
            release=shared.setdefault(rls, rls),
        )
    if pending is not None:
        yield pending


def _chosen_sources(
    tx: Tx,
    fingerprint: str | None,
    since: float | None,
    until: float | None,
    release: str | None,
    has_release: bool,
) -> dict[str, str]:
    """The source to read of each fingerprint that more than one source wrote in the range
    (:func:`_one_source_each` over the rows :func:`statement_windows` would read)."""
    rel = _release_column(has_release, "w.")
    where, params = _where("fingerprint", fingerprint, since, until, prefix="w.")
    where, params = _and_release(where, params, rel, release)
    # Most stores have one source: one pass without grouping says so.
    bounds = tx.rows(f"SELECT MIN(w.source), MAX(w.source) FROM windows w{where}", params)
    if not bounds or bounds[0][0] == bounds[0][1]:
        return {}
    sql = (
        "SELECT w.fingerprint, w.source, SUM(w.calls) "
        f"FROM windows w JOIN fingerprints f ON f.fingerprint = w.fingerprint{where} "
        "GROUP BY w.fingerprint, w.source ORDER BY w.fingerprint"
    )
    chosen: dict[str, str] = {}
    group: list[tuple[str, str, int]] = []
    for fp, src, calls in tx.each(sql, params):
        if group and group[0][0] != fp:
            if len(group) > 1:
                chosen.update(_one_source_each(group))
            group = []
        group.append((fp, src, int(calls)))
    if len(group) > 1:
        chosen.update(_one_source_each(group))
    return chosen


def request_windows(
    tx: Tx,
    route: str | None = None,
    since: float | None = None,
    until: float | None = None,
    release: str | None = None,
    *,
    has_release: bool = True,
) -> list[RequestWindow]:
    return list(iter_request_windows(tx, route, since, until, release, has_release=has_release))


def iter_request_windows(
    tx: Tx,
    route: str | None = None,
    since: float | None = None,
    until: float | None = None,
    release: str | None = None,
    *,
    has_release: bool = True,
) -> Iterator[RequestWindow]:
    """The windows :func:`request_windows` returns, one at a time from the cursor."""
    rel = _release_column(has_release)
    where, params = _where("route", route, since, until)
    where, params = _and_release(where, params, rel, release)
    sql = (
        "SELECT route, window_start, requests, errors, total_ms, max_ms, db_ms, db_calls, "
        f"sketch, users, failed_users, {rel} FROM request_windows{where} "
        f"ORDER BY window_start, route, resolution, {rel}"
    )
    pending: RequestWindow | None = None
    for r, start, requests, errors, total, mx, db, calls, sk, users, failed, rls in tx.each(
        sql, params
    ):
        w = RequestWindow(
            r,
            int(start),
            int(requests),
            int(errors),
            float(total),
            float(mx),
            float(db),
            int(calls),
            _sketch(sk),
            frozenset(json.loads(users)),
            frozenset(json.loads(failed)),
            rls,
        )
        if pending is not None and pending.route == r and pending.window_start == w.window_start:
            _sum_request(pending, w)
            continue
        if pending is not None:
            yield pending
        pending = w
    if pending is not None:
        yield pending


def repeat_windows(
    tx: Tx,
    route: str | None = None,
    fingerprint: str | None = None,
    since: float | None = None,
    until: float | None = None,
    release: str | None = None,
    *,
    has_release: bool = True,
) -> list[RepeatWindow]:
    rel = _release_column(has_release, "r.")
    clauses, params = [], list[object]()
    for column, value in (("r.route", route), ("r.fingerprint", fingerprint)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if since is not None:
        clauses.append("r.window_start >= ?")
        params.append(since)
    if until is not None:
        clauses.append("r.window_start < ?")
        params.append(until)
    where = " WHERE " + " AND ".join(clauses) if clauses else ""
    where, params = _and_release(where, params, rel, release)
    sql = (
        "SELECT r.route, r.fingerprint, r.window_start, r.requests, r.total_repeats, "
        f"r.max_repeats, f.normalized, f.dialect, {rel} FROM request_repeats r "
        f"LEFT JOIN fingerprints f ON f.fingerprint = r.fingerprint{where} "
        f"ORDER BY r.window_start, r.route, r.fingerprint, r.resolution, {rel}"
    )
    windows: list[RepeatWindow] = []
    for route_, fp, start, requests, total, mx, normalized, dialect, rls in tx.rows(sql, params):
        if windows:
            last = windows[-1]
            if (last.route, last.fingerprint, last.window_start) == (route_, fp, int(start)):
                last.requests += int(requests)
                last.total_repeats += int(total)
                last.max_repeats = max(last.max_repeats, int(mx))
                last.release = last.release if last.release == rls else ""
                continue
        windows.append(
            RepeatWindow(
                route_,
                fp,
                int(start),
                int(requests),
                int(total),
                int(mx),
                normalized or "",
                dialect or "postgres",
                rls,
            )
        )
    return windows


def _release_column(has_release: bool, prefix: str = "") -> str:
    """The release column, or ``''`` for every row of a store older than the column."""
    return f"{prefix}release" if has_release else "CAST('' AS TEXT)"


def _and_release(
    where: str, params: list[object], column: str, release: str | None
) -> tuple[str, list[object]]:
    """``where`` narrowed to one release (``None``: every release)."""
    if release is None:
        return where, params
    return where + (" AND " if where else " WHERE ") + f"{column} = ?", [*params, release]


def _sum_statement(
    w: StatementWindow,
    calls: int,
    total: float,
    mx: float,
    mn: float | None,
    nrows: int,
    errors: int,
    hit: int,
    blks_read: int,
    sketch: str | None,
    release: str,
) -> None:
    """Add another release's row of the same bucket into ``w`` (a read of every release)."""
    w.calls += int(calls)
    w.total_ms += float(total)
    w.max_ms = max(w.max_ms, float(mx))
    if mn is not None:
        w.min_ms = float(mn) if w.min_ms is None else min(w.min_ms, float(mn))
    w.rows += int(nrows)
    w.errors += int(errors)
    w.shared_blks_hit += int(hit)
    w.shared_blks_read += int(blks_read)
    other = _sketch(sketch)
    if other is not None:
        if w.sketch is None:
            w.sketch = other
        else:
            w.sketch.merge(other)  # the row's own sketch, made for this read
    if w.release != release:
        w.release = ""


def _sum_request(into: RequestWindow, w: RequestWindow) -> None:
    """Add another release's request window of the same route and bucket into ``into``."""
    into.requests += w.requests
    into.errors += w.errors
    into.total_ms += w.total_ms
    into.max_ms = max(into.max_ms, w.max_ms)
    into.db_ms += w.db_ms
    into.db_calls += w.db_calls
    if w.sketch is not None:
        if into.sketch is None:
            into.sketch = w.sketch
        else:
            into.sketch.merge(w.sketch)
    into.users = into.users | w.users
    into.failed_users = into.failed_users | w.failed_users
    if into.release != w.release:
        into.release = ""


def _where(
    column: str, value: str | None, since: float | None, until: float | None, prefix: str = ""
) -> tuple[str, list[object]]:
    """A WHERE clause for an optional key and a [since, until) range on bucket starts."""
    clauses, params = [], list[object]()
    if value is not None:
        clauses.append(f"{prefix}{column} = ?")
        params.append(value)
    if since is not None:
        clauses.append(f"{prefix}window_start >= ?")
        params.append(since)
    if until is not None:
        clauses.append(f"{prefix}window_start < ?")
        params.append(until)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _one_source_each(calls: Iterable[tuple[str, str, int]]) -> dict[str, str]:
    """Per fingerprint, the source that saw the most calls (ties: the greater name).

    pg_stat_statements sees every client of the database, in-app capture only the instrumented
    ones, so on one database the source with more calls is the more complete view; adding the two
    would count each call twice.
    """
    totals: dict[tuple[str, str], int] = {}
    for fp, source, n in calls:
        totals[fp, source] = totals.get((fp, source), 0) + n
    best: dict[str, tuple[int, str]] = {}
    for (fp, source), n in totals.items():
        if (n, source) > best.get(fp, (-1, "")):
            best[fp] = (n, source)
    return {fp: source for fp, (_, source) in best.items()}


def _sketch(text: str | None) -> LatencySketch | None:
    return LatencySketch.from_json(text) if text is not None else None


def _sort_value(summary: FingerprintSummary, sort: SortKey) -> float:
    if sort == "total":
        return summary.total_ms
    if sort == "mean":
        return summary.mean_ms
    if sort == "calls":
        return summary.calls
    return summary.p95_ms if summary.p95_ms is not None else float("-inf")
