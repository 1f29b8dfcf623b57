"""Many writers, one store: N processes capture in-app into one PostgreSQL store at once.

Each process opens its own psycopg connection to an application database, instruments it with
``querywatch.instrument(conn, sink=<store>)`` and issues point queries of ``--shapes`` statement
shapes (the same shapes in every process, so their windows land on the same rows of the store)
at a fixed rate for a fixed time. At the end every process flushes and reports what it issued.
The bench then reads the store and checks, per fingerprint, that the stored calls equal the calls
issued: nothing lost, nothing doubled. It reports the store's write throughput (window upserts
and statements per second, as the writers timed them and as PostgreSQL counted them) and the
capture processes' memory.

    .venv/bin/python bench/many_writers.py [--dsn postgresql://...] [--processes 8]
        [--rate 250] [--duration 30] [--shapes 100] [--flush-interval 1]

Without ``--dsn`` a throwaway cluster is started with tests/pg_cluster.py; with it, databases
``qw_bench_app`` and ``qw_bench_store`` are (re)created there.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

APP_DB = "qw_bench_app"
STORE_DB = "qw_bench_store"


def shape(k: int) -> str:
    """The k-th statement shape: one fingerprint each (the alias is part of the shape)."""
    return f"SELECT id, name AS c{k} FROM qw_items WHERE id = %s"


def rss_kib() -> tuple[int, int]:
    """(current RSS, peak RSS) of this process in KiB, from /proc."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


@dataclass
class Report:
    """What one capture process did."""

    issued: dict[str, int] = field(default_factory=dict)  # fingerprint -> calls
    statements: int = 0
    seconds: float = 0.0
    behind_s: float = 0.0  # how far the process lagged its schedule at the end
    batches: int = 0
    windows: int = 0
    write_s: list[float] = field(default_factory=list)
    rss_before_kib: int = 0
    rss_end_kib: int = 0
    peak_kib: int = 0
    failed_flushes: int = 0
    dropped_windows: int = 0


class TimedStore:
    """The store as the recorder's sink, timing each batch it writes."""

    def __init__(self, store: Any, report: Report) -> None:
        self.store = store
        self.report = report

    def write_windows(self, windows: Sequence[Any]) -> None:
        t0 = time.perf_counter()
        self.store.write_windows(windows)
        self.report.write_s.append(time.perf_counter() - t0)
        self.report.batches += 1
        self.report.windows += len(windows)

    def write_requests(self, windows: Sequence[Any]) -> None:
        self.store.write_requests(windows)

    def write_repeats(self, windows: Sequence[Any]) -> None:
        self.store.write_repeats(windows)


def capture(
    app_dsn: str, store_dsn: str, start_at: float, rate: float, duration: float, args: Any
) -> Report:
    """One application process: issue statements on schedule, captured into the shared store."""
    import querywatch
    from querywatch.sql import fingerprint
    from querywatch.store import open_store

    report = Report()
    conn = psycopg.connect(app_dsn, autocommit=True)
    store = open_store(store_dsn)
    shapes = [shape(k) for k in range(args.shapes)]
    ids = [fingerprint(s, "postgres").id for s in shapes]
    report.rss_before_kib = rss_kib()[0]
    inst = querywatch.instrument(
        conn, sink=TimedStore(store, report), flush_interval=args.flush_interval
    )
    time.sleep(max(0.0, start_at - time.time()))
    total = int(rate * duration)
    t0 = time.perf_counter()
    for i in range(total):
        due = t0 + i / rate
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        k = i % len(shapes)
        conn.execute(shapes[k], (i % 1000,)).fetchone()
        report.issued[ids[k]] = report.issued.get(ids[k], 0) + 1
    report.behind_s = max(0.0, time.perf_counter() - (t0 + total / rate))
    report.seconds = time.perf_counter() - t0
    report.statements = total
    inst.close()  # flushes what is left, on the flusher thread
    report.failed_flushes = inst.recorder.failed_flushes
    report.dropped_windows = inst.recorder.dropped_windows
    report.rss_end_kib, report.peak_kib = rss_kib()
    store.close()
    conn.close()
    return report


@contextlib.contextmanager
def server(dsn: str | None) -> Iterator[str]:
    if dsn:
        yield dsn
        return
    from pg_cluster import running_cluster

    with running_cluster() as started:
        yield started


def fresh_databases(admin_dsn: str) -> tuple[str, str]:
    base = admin_dsn.rsplit("/", 1)[0]
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        for name in (APP_DB, STORE_DB):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    app, store = f"{base}/{APP_DB}", f"{base}/{STORE_DB}"
    with psycopg.connect(app, autocommit=True) as conn:
        conn.execute("CREATE TABLE qw_items (id int PRIMARY KEY, name text NOT NULL)")
        conn.execute("INSERT INTO qw_items SELECT g, 'item-' || g FROM generate_series(0, 999) g")
        conn.execute("ANALYZE qw_items")
    return app, store


def store_counters(store_dsn: str) -> tuple[int, int]:
    """(transactions committed in the store database, rows inserted + updated in its windows)."""
    with psycopg.connect(store_dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        xact = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        tup = conn.execute(
            "SELECT COALESCE(SUM(n_tup_ins + n_tup_upd), 0) FROM pg_stat_user_tables "
            "WHERE schemaname = 'querywatch' AND relname = 'windows'"
        ).fetchone()
    assert xact is not None and tup is not None
    return int(xact[0]), int(tup[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", help="an admin DSN of a PostgreSQL server to use")
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--rate", type=float, default=250.0, help="statements/s per process")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--shapes", type=int, default=100, help="distinct statement shapes")
    parser.add_argument("--flush-interval", type=float, default=1.0, help="seconds between flushes")
    args = parser.parse_args()

    from querywatch.store import open_store

    with server(args.dsn) as admin:
        app_dsn, store_dsn = fresh_databases(admin)
        open_store(store_dsn).close()  # the schema exists before the writers race to make it
        xact0, tup0 = store_counters(store_dsn)
        start_at = time.time() + 3.0  # every process connected and ready by then
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(args.processes) as pool:
            pending = [
                pool.apply_async(
                    capture, (app_dsn, store_dsn, start_at, args.rate, args.duration, args)
                )
                for _ in range(args.processes)
            ]
            reports: list[Report] = [p.get(timeout=args.duration * 4 + 120) for p in pending]
        wall = time.time() - start_at
        time.sleep(1.0)  # let the statistics collector see the last commits
        xact1, tup1 = store_counters(store_dsn)

        issued: dict[str, int] = {}
        for r in reports:
            for fp, n in r.issued.items():
                issued[fp] = issued.get(fp, 0) + n
        with open_store(store_dsn, read_only=True) as store:
            stored: dict[str, int] = {}
            for w in store.statement_windows(source="app"):
                stored[w.fingerprint] = stored.get(w.fingerprint, 0) + w.calls
            other = {w.source for w in store.statement_windows()} - {"app"}

    lost = {fp: n - stored.get(fp, 0) for fp, n in issued.items() if stored.get(fp, 0) < n}
    doubled = {fp: n - issued.get(fp, 0) for fp, n in stored.items() if n > issued.get(fp, 0)}
    statements = sum(r.statements for r in reports)
    windows = sum(r.windows for r in reports)
    batches = sum(r.batches for r in reports)
    writes = sorted(s for r in reports for s in r.write_s)
    load_s = max(r.seconds for r in reports)
    print(
        f"{args.processes} processes × {args.rate:g} statements/s × {args.duration:g} s, "
        f"{args.shapes} shapes, flush every {args.flush_interval:g} s"
    )
    print(
        f"issued {statements:,} statements ({statements / load_s:,.0f}/s over {load_s:.1f} s; "
        f"the slowest process ended {max(r.behind_s for r in reports):.2f} s behind schedule)"
    )
    print(
        f"stored {sum(stored.values()):,} calls in {len(stored)} fingerprints; "
        f"lost {sum(lost.values())} (in {len(lost)}), doubled {sum(doubled.values())} "
        f"(in {len(doubled)}); other sources in the store: {sorted(other) or 'none'}"
    )
    print(
        f"store writes: {batches:,} batches, {windows:,} window upserts, "
        f"{windows / load_s:,.0f} upserts/s, {statements / load_s:,.0f} statements/s recorded; "
        f"batch latency median {statistics.median(writes) * 1000:.1f} ms, "
        f"p95 {writes[int(0.95 * (len(writes) - 1))] * 1000:.1f} ms, "
        f"max {writes[-1] * 1000:.1f} ms"
    )
    print(
        f"PostgreSQL counted {xact1 - xact0:,} commits and {tup1 - tup0:,} windows rows "
        f"inserted or updated in the store database over {wall:.1f} s"
    )
    print(
        f"capture processes' RSS: before instrumenting median "
        f"{statistics.median(r.rss_before_kib for r in reports) / 1024:.1f} MiB; at the end "
        f"median {statistics.median(r.rss_end_kib for r in reports) / 1024:.1f} MiB, peak max "
        f"{max(r.peak_kib for r in reports) / 1024:.1f} MiB; failed flushes "
        f"{sum(r.failed_flushes for r in reports)}, dropped windows "
        f"{sum(r.dropped_windows for r in reports)}"
    )
    ok = not lost and not doubled and sum(stored.values()) == statements
    print("OK: stored calls equal the calls issued" if ok else "FAILED: stored calls differ")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
