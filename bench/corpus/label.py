"""Label the corpus by measurement: EXPLAIN (ANALYZE, BUFFERS) on warm data, a few runs each.

    .venv/bin/python bench/corpus/label.py --data-dir /tmp/qw-corpus          # new/changed only
    .venv/bin/python bench/corpus/label.py --data-dir /tmp/qw-corpus --all    # re-measure all
    .venv/bin/python bench/corpus/label.py --dsn postgresql://… --family cartesian-join

A query is **slow** when the median execution time of its measured runs is at least
``SLOW_MS`` (100 ms) on this machine, **fine** otherwise. Each query runs once to warm the cache,
then ``RUNS`` more times (once when the warm-up already took over 2 s). Buffers (shared hit + read
+ temp) are recorded beside the time. Results go to labels.json, keyed by query id, with the
digest of the statement so that an edited query is measured again.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from corpus import db  # noqa: E402
from corpus.queries import Query, load_queries  # noqa: E402

LABELS = HERE / "labels.json"
SLOW_MS = 100.0
RUNS = 3
TIMEOUT_MS = 20_000


def read_labels() -> dict[str, dict[str, Any]]:
    if not LABELS.exists():
        return {}
    data: dict[str, dict[str, Any]] = json.loads(LABELS.read_text())
    return data


def write_labels(labels: dict[str, dict[str, Any]]) -> None:
    LABELS.write_text(json.dumps(dict(sorted(labels.items())), indent=1) + "\n")


def _buffers(node: dict[str, Any]) -> int:
    keys = ("Shared Hit Blocks", "Shared Read Blocks", "Temp Read Blocks", "Temp Written Blocks")
    return int(sum(node.get(k, 0) for k in keys))


def measure_once(conn: psycopg.Connection, sql: str) -> tuple[float, int, float]:
    """(execution ms, buffers, actual rows) of one EXPLAIN ANALYZE run, rolled back."""
    with conn.transaction(force_rollback=True):
        row = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}").fetchone()
    assert row is not None
    doc = row[0][0]
    return float(doc["Execution Time"]), _buffers(doc["Plan"]), float(doc["Plan"]["Actual Rows"])


def measure(conn: psycopg.Connection, q: Query) -> dict[str, Any]:
    try:
        times: list[float] = []
        first, buffers, rows = measure_once(conn, q.sql)
        runs = RUNS if first < 2000 else 1
        for _ in range(runs):
            ms, buffers, rows = measure_once(conn, q.sql)
            times.append(ms)
        median = statistics.median(times)
        timed_out = False
    except psycopg.errors.QueryCanceled:
        times, median, buffers, rows, timed_out = [float(TIMEOUT_MS)], float(TIMEOUT_MS), 0, 0, True
    return {
        "family": q.family,
        "schema": q.schema,
        "intent": q.intent,
        "digest": q.digest,
        "ms": [round(t, 2) for t in times],
        "median_ms": round(median, 2),
        "buffers": buffers,
        "rows": rows,
        "timed_out": timed_out,
        "label": "slow" if median >= SLOW_MS else "fine",
        "measured": time.strftime("%Y-%m-%d"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--dsn", help="admin DSN of a running server (schemas loaded if missing)")
    where.add_argument("--data-dir", type=Path, help="persistent cluster directory (reused)")
    ap.add_argument("--family", action="append", help="only this family (repeatable)")
    ap.add_argument("--name", action="append", help="only ids containing this (repeatable)")
    ap.add_argument("--all", action="store_true", help="re-measure queries already labelled")
    args = ap.parse_args(argv)

    queries = load_queries(args.family, args.name)
    labels = read_labels()
    todo = [q for q in queries if args.all or labels.get(q.id, {}).get("digest") != q.digest]
    print(f"{len(todo)} of {len(queries)} queries to measure", file=sys.stderr)
    if not todo:
        return 0
    failed = 0
    with db.cluster(args.data_dir) if args.dsn is None else _given(args.dsn) as admin:
        dsns = db.ensure_loaded(admin, sorted({q.schema for q in todo}))
        conns = {s: psycopg.connect(d, autocommit=True) for s, d in dsns.items()}
        try:
            for c in conns.values():
                c.execute(f"SET statement_timeout = {TIMEOUT_MS}")
            for i, q in enumerate(todo, 1):
                try:
                    result = measure(conns[q.schema], q)
                except psycopg.Error as exc:
                    print(f"[{i}/{len(todo)}] {q.id}: {str(exc).splitlines()[0]}", file=sys.stderr)
                    failed += 1
                    continue
                labels[q.id] = result
                mark = "" if result["label"] == q.intent else "   (intent: " + q.intent + ")"
                print(
                    f"[{i}/{len(todo)}] {q.id:<55} {result['median_ms']:>10.1f} ms "
                    f"{result['buffers']:>9} buf  {result['label']}{mark}",
                    file=sys.stderr,
                )
                write_labels(labels)
        finally:
            for c in conns.values():
                c.close()
    known = {q.id for q in load_queries()}
    write_labels({k: v for k, v in labels.items() if k in known})
    return 1 if failed else 0


class _given:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def __enter__(self) -> str:
        return self.dsn

    def __exit__(self, *exc: object) -> None:
        return None


if __name__ == "__main__":
    sys.exit(main())
