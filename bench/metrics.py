"""What one /metrics scrape costs at 10,000 fingerprints: milliseconds per `metrics_payload`.

    python bench/metrics.py                       # 10,000 fingerprints, all called every 10 s
    python bench/metrics.py --active 1000         # 1,000 of them called in each 10 s window
    python bench/metrics.py --fingerprints 1000 --minutes 10 --repeat 10

By default the store is the worst case for a scrape: every fingerprint has a window in every 10 s
bucket of the last ``--minutes`` (a busy database where every query runs all the time), so the
look-back holds fingerprints x 6 rows; ``--active N`` calls about N of them per window instead
(the agent-footprint bench's "1,000 changing" per poll). A tenth are captured in-app and carry
latency sketches (the rest come from pg_stat_statements, totals only), and the top ones by
database time are among them. Plus a deploy every ten minutes. Rows go in with plain INSERTs
(keys unique by construction) into a store made by ``open_store``; then ``metrics_payload`` runs
``--repeat`` times per ``--top-n`` value at the last bucket's end, as a Prometheus scraping every
15 s would.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from querywatch.records import window_start
from querywatch.sketch import LatencySketch
from querywatch.store import open_store
from querywatch.web.metrics import metrics_payload

SKETCHED_SHARE = 0.1


def build(
    path: Path, fingerprints: int, minutes: int, now: float, active: int, seed: int = 5
) -> int:
    """Fill a new store; returns the number of window rows."""
    open_store(path).close()
    rng = random.Random(seed)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    end = window_start(now)
    start = end - minutes * 60
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO fingerprints (fingerprint, normalized, dialect, first_seen, last_seen) "
        "VALUES (?, ?, 'postgres', ?, ?)",
        (
            (f"{k:016x}", f"select * from t_{k} where id = $1", start, end)
            for k in range(fingerprints)
        ),
    )
    rows = 0
    for k in range(fingerprints):
        sketched = k % int(1 / SKETCHED_SHARE) == 0
        mean_ms = rng.lognormvariate(0.5, 1.2) * (10 if sketched else 1)
        batch = []
        for at in range(start, end, 10):
            if active < fingerprints and rng.random() * fingerprints >= active:
                continue
            calls = rng.randint(1, 40)
            sketch = LatencySketch()
            if sketched:
                for _ in range(calls):
                    sketch.add(mean_ms * rng.lognormvariate(0, 0.3))
            batch.append(
                (
                    f"{k:016x}",
                    at,
                    10,
                    calls,
                    calls * mean_ms,
                    mean_ms * 3,
                    mean_ms / 3,
                    calls,
                    0,
                    0,
                    0,
                    sketch.to_json() if sketched else None,
                    "app" if sketched else "pg_stat_statements",
                    "",
                )
            )
        conn.executemany(
            "INSERT INTO windows (fingerprint, window_start, resolution, calls, total_ms, max_ms, "
            "min_ms, rows, errors, shared_blks_hit, shared_blks_read, sketch, source, release) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            batch,
        )
        rows += len(batch)
    conn.executemany(
        'INSERT INTO deploys (id, version, "commit", environment, started_at, "rollback") '
        "VALUES (?, ?, ?, 'production', ?, ?)",
        ((f"d{i}", f"v{i}", f"{i:08x}", start + 600 * i, False) for i in range(minutes // 10)),
    )
    conn.execute("COMMIT")
    conn.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fingerprints", type=int, default=10_000)
    parser.add_argument("--minutes", type=int, default=30, help="history kept at 10 s")
    parser.add_argument("--active", type=int, help="fingerprints called per window (default: all)")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--top-n", default="50,1000", help="comma-separated metrics_top_n values")
    args = parser.parse_args(argv)
    now = float(window_start(time.time()))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "metrics.sqlite3"
        began = time.perf_counter()
        active = min(args.active or args.fingerprints, args.fingerprints)
        rows = build(path, args.fingerprints, args.minutes, now, active)
        print(
            f"store: {args.fingerprints:,} fingerprints, {active:,} of them in each 10 s window "
            f"of {args.minutes} min ({rows:,} windows, {SKETCHED_SHARE:.0%} with sketches), "
            f"built in {time.perf_counter() - began:.0f} s",
            flush=True,
        )
        store = open_store(path, read_only=True)
        print(
            f"{'top_n':>6} {'median ms':>10} {'p90 ms':>8} {'max ms':>8} {'series':>7} {'bytes':>8}"
        )
        for top_n in (int(n) for n in args.top_n.split(",")):
            metrics_payload(store, top_n=top_n, now=now)  # warm: imports, page cache
            took = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                payload = metrics_payload(store, top_n=top_n, now=now)
                took.append((time.perf_counter() - t) * 1000)
            series = sum(len(f.samples) for f in text_string_to_metric_families(payload.decode()))
            took.sort()
            p90 = took[max(0, round(0.9 * len(took)) - 1)]
            print(
                f"{top_n:>6} {statistics.median(took):>10.1f} {p90:>8.1f} {took[-1]:>8.1f} "
                f"{series:>7} {len(payload):>8,}"
            )
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
