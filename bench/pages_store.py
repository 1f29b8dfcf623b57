"""A week of data at 10,000 fingerprints in a SQLite store, for the dashboard's page timings.

Shaped like what ``querywatch watch`` leaves after a week with the default retention: the last
day at 10 s resolution, the six days before it rolled up into 1 min rows. Fingerprints are
called at Zipf-distributed rates (a few hot queries, a long tail), so about ``--active`` of them
have a window in any 10 s bucket (the agent-footprint bench's "1,000 changing" per poll); a
tenth are captured in-app (source ``app``: latency sketches, call sites), the rest come from
pg_stat_statements (totals only). Traffic follows the day. A deploy every eight hours or so,
one of them bad (a new query that costs a lot, and an incident opened for it).

Rows go in with plain INSERTs in large transactions (keys are unique by construction); the
store's own upserts would take an hour for this many. Rollups are then made with the store's
own rebuild, as the migration does for an existing store. In-app capture sees the application's
own calls, which pg_stat_statements sees too: those fingerprints have rows from both sources.
"""

from __future__ import annotations

import heapq
import math
import random
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

DAY = 86400
RAW_HORIZON = DAY  # Retention().raw_seconds
SKETCHED_SHARE = 0.1
BAD_FP = 7  # the index of the fingerprint the bad deploy makes slow


@dataclass(frozen=True, slots=True)
class Shape:
    fingerprints: int = 10_000
    days: int = 7
    active: int = 1_000  # fingerprints with a window in a 10 s bucket, on average
    seed: int = 13

    def name(self) -> str:
        return f"pages-{self.fingerprints}fp-{self.days}d-{self.active}a-s{self.seed}.sqlite3"


def statement(k: int) -> str:
    """A web app's statement, its own fingerprint per ``k``."""
    table = ("orders", "customers", "products", "carts", "invoices", "shipments")[k % 6]
    kind = k % 4
    if kind == 0:
        return f"select * from {table}_{k} where id = 5"
    if kind == 1:
        return (
            f"select t.id, t.status, t.created_at from {table}_{k} t where t.customer_id = 5 "
            "and t.status <> 'x' order by t.created_at desc limit 20"
        )
    if kind == 2:
        return f"update {table}_{k} set status = 'paid', updated_at = now() where id = 7"
    return f"insert into {table}_{k} (a, b, c) values (1, 2, 3)"


def _rates(shape: Shape) -> list[float]:
    """Calls per second per fingerprint: Zipf, scaled so about ``active`` are seen per 10 s."""

    def seen(scale: float) -> float:
        return sum(1 - math.exp(-10 * scale / (k + 1) ** 1.1) for k in range(shape.fingerprints))

    lo, hi = 1e-3, 1e5
    for _ in range(60):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if seen(mid) < shape.active else (lo, mid)
    return [lo / (k + 1) ** 1.1 for k in range(shape.fingerprints)]


def _sketch(mean_ms: float, calls: int, rng: random.Random) -> str:
    """A latency sketch of ``calls`` around ``mean_ms`` (about 10 of its ±1% buckets)."""
    from querywatch.sketch import bucket_key

    centre = bucket_key(mean_ms)
    width = 12
    counts: dict[int, int] = {}
    left = calls
    for i in range(width):
        n = left if i == width - 1 else min(left, max(0, round(calls / width * rng.uniform(0, 2))))
        if n:
            key = centre - width // 2 + i
            counts[key] = counts.get(key, 0) + n
        left -= n
    return "{" + ",".join(f'"{k}":{v}' for k, v in counts.items()) + "}"


@dataclass(slots=True)
class _Query:
    k: int
    id: str
    normalized: str
    rate: float  # calls per second
    mean_ms: float
    sketched: bool  # also captured in-app
    born: float
    first: int = 0
    last: int = 0


def build(path: Path, shape: Shape, now: float, *, progress: bool = True) -> dict[str, int]:
    """Fill a new store at ``path`` in time order (as an agent writes it); returns row counts."""
    from querywatch.sql import fingerprint
    from querywatch.store import open_store
    from querywatch.store.rollups import rebuild_rollups

    path.unlink(missing_ok=True)
    open_store(path).close()  # the schema, migrated to the latest version
    rng = random.Random(shape.seed)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("DROP INDEX IF EXISTS windows_by_time")
    start = int(now) - shape.days * DAY
    raw_from = (int(now) - RAW_HORIZON) // 60 * 60
    deploys = _deploys(conn, start, int(now), rng)
    bad = next(d for d in deploys if d[1] == "v2.4.0")
    queries = []
    for k, rate in enumerate(_rates(shape)):
        fp = fingerprint(statement(k), "postgres", remember=False)
        sketched = rng.random() < SKETCHED_SHARE or k == BAD_FP
        mean_ms = math.exp(rng.gauss(0.5, 1.2))
        born = float(start)
        if k == BAD_FP:  # the bad release's new query: heavy, and called a lot
            rate, mean_ms, born = 40.0, 80.0, bad[2] + 90
        queries.append(_Query(k, fp.id, fp.normalized, rate, mean_ms, sketched, born))
    written = 0
    started = time.monotonic()
    for resolution, lo, hi in ((60, start, raw_from), (10, raw_from, int(now))):
        written += _rows_in_time_order(conn, queries, resolution, lo, hi, rng, progress, started)
    conn.execute("BEGIN")
    for q in queries:
        if q.first:
            conn.execute(
                "INSERT INTO fingerprints (fingerprint, normalized, dialect, first_seen, "
                "last_seen) VALUES (?, ?, 'postgres', ?, ?)",
                (q.id, q.normalized, q.first, q.last),
            )
        if q.sketched:
            for n in range(1 + q.k % 3):
                conn.execute(
                    "INSERT INTO call_sites (fingerprint, path, line, function) VALUES (?,?,?,?)",
                    (q.id, f"shop/models/m{q.k % 97}.py", 10 + 7 * n + q.k % 300, f"load_{q.k}"),
                )
    conn.execute("COMMIT")
    conn.execute("CREATE INDEX windows_by_time ON windows (window_start)")
    conn.close()
    with open_store(path) as store:
        store.transaction(rebuild_rollups)
        _incident(store, bad, now)
    return {"fingerprints": len(queries), "windows": written}


def _rows_in_time_order(
    conn: sqlite3.Connection,
    queries: list[_Query],
    resolution: int,
    lo: int,
    hi: int,
    rng: random.Random,
    progress: bool,
    started: float,
) -> int:
    """Windows of ``resolution`` over ``[lo, hi)``, bucket by bucket: each query is in a bucket
    with the chance of at least one call at its rate (the next one drawn, not each tried)."""
    heap: list[tuple[int, int]] = []
    chance = {}
    for q in queries:
        p = 1 - math.exp(-q.rate * resolution)
        first = max(lo, math.ceil(q.born / resolution) * resolution)
        if p > 0 and first < hi:
            chance[q.k] = p
            heapq.heappush(heap, (first + resolution * (_gap(p, rng) - 1), q.k))
    batch: list[tuple[object, ...]] = []
    written = 0
    conn.execute("BEGIN")
    while heap and heap[0][0] < hi:
        at, k = heapq.heappop(heap)
        q = queries[k]
        day = 1 + 0.5 * math.sin(2 * math.pi * (at % DAY) / DAY)
        calls = max(1, round(q.rate * resolution * day * rng.uniform(0.7, 1.3)))
        mean = q.mean_ms * rng.uniform(0.85, 1.2)
        row = (q.id, at, resolution, calls, calls * mean, mean * 2.5, mean * 0.4)
        rest = (calls * (k % 40), 0, calls * 12, calls // 50)
        batch.append((*row, *rest, None, "pg_stat_statements", ""))
        if q.sketched:  # in-app capture sees the same calls, with their latencies
            batch.append((*row, *rest, _sketch(mean, calls, rng), "app", ""))
        q.first = q.first or at
        q.last = at
        heapq.heappush(heap, (at + resolution * _gap(chance[k], rng), k))
        if len(batch) >= 200_000:
            written += _insert(conn, batch)
            if progress:
                stamp = time.strftime("%m-%d %H:%M", time.gmtime(at))
                took = time.monotonic() - started
                print(f"  {written:,} windows, up to {stamp}, {took:.0f} s", flush=True)
    written += _insert(conn, batch)
    conn.execute("COMMIT")
    return written


def _insert(conn: sqlite3.Connection, batch: list[tuple[object, ...]]) -> int:
    conn.executemany(
        "INSERT INTO windows (fingerprint, window_start, resolution, calls, total_ms, max_ms, "
        "min_ms, rows, errors, shared_blks_hit, shared_blks_read, sketch, source, release) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        batch,
    )
    conn.execute("COMMIT")
    conn.execute("BEGIN")
    n = len(batch)
    batch.clear()
    return n


def _deploys(
    conn: sqlite3.Connection, start: int, end: int, rng: random.Random
) -> list[tuple[str, str, float]]:
    """A deploy about every eight hours; v2.4.0 (the bad one) three hours before the end."""
    rows = []
    at = start + 3600.0
    n = 0
    authors = ("alice", "bob", "carol", "dave")
    while at < end - 4 * 3600:
        n += 1
        rows.append((f"d{n}", f"v2.{n // 10}.{n % 10}", at))
        at += rng.uniform(5, 11) * 3600
    rows.append((f"d{n + 1}", "v2.4.0", end - 3 * 3600.0))
    conn.execute("BEGIN")
    for i, (deploy_id, version, started) in enumerate(rows):
        conn.execute(
            'INSERT INTO deploys (id, version, "commit", environment, started_at, finished_at, '
            'author, previous_version, "rollback") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
            (
                deploy_id,
                version,
                f"{rng.getrandbits(40):010x}",
                "production",
                started,
                started + 90,
                authors[i % 4],
                rows[i - 1][1] if i else None,
                False,
            ),
        )
    conn.execute("COMMIT")
    return rows


def _gap(p: float, rng: random.Random) -> int:
    """Buckets to the next active one, when each is active with probability ``p``."""
    if p >= 1 - 1e-12:
        return 1
    return 1 + int(math.log(1 - rng.random()) / math.log(1 - p))


def _incident(store: object, bad: tuple[str, str, float], now: float) -> None:
    """The incident the bad deploy opened (built from its figures, as the monitor records it)."""
    from querywatch.detect.model import Culprit, Detection, PhaseStats, Triage
    from querywatch.incidents.model import Impact, Incident, TimelineEvent
    from querywatch.incidents.repository import create_incident
    from querywatch.records import CallSite
    from querywatch.sql import fingerprint

    fp = fingerprint(statement(BAD_FP), "postgres", remember=False)
    detected = bad[2] + 120
    detection = Detection(
        kind="new_fingerprint",
        detected_at=detected,
        confidence=0.97,
        summary=f"a new query costs 3,200 ms of database time per second since deploy {bad[1]}",
        fingerprint=fp.id,
        normalized=fp.normalized,
        deploy_id=bad[0],
        before=None,
        after=PhaseStats(4800, 40.0, 80.0, 150.0, 3200.0),
        added_db_ms_per_s=3200.0,
    )
    incident = Incident(
        id="",
        status="open",
        opened_at=detected,
        detected_at=detected,
        title=f"new query costs 3,200 ms/s since deploy {bad[1]}",
        deploy_id=bad[0],
        detections=[detection],
        culprits=[
            Culprit(
                fp.id, fp.normalized, 3200.0, bad[0], (CallSite("shop/models/m7.py", 17, "load_7"),)
            )
        ],
        triage=Triage(0.4, 0.9, "the database is the bottleneck: 90% of request time", True),
        impact=Impact(100_000, 31_000, 2_000, 1_700, 1000.0, detected, now),
        timeline=[TimelineEvent(detected, "detected", detection.summary)],
    )
    create_incident(store, incident, "INC")  # type: ignore[arg-type]
