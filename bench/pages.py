"""Dashboard page timings over a store holding a week of data at 10,000 fingerprints.

Builds the store once (bench/pages_store.py: ~41M windows in time order, the last day at 10 s
and the six before as minute rows, the store's rollups made by its own rebuild; about 20 min and
7 GB, kept in --cache for the next run), then serves it with the real app (`querywatch serve`'s
Starlette app, no auth, the clock pinned to the store's "now") and times every page through
Starlette's in-process client: the first request of each page (the app's caches empty: deploy
effects, git blame) and the median and worst of --repeat more. The goal (DESIGN.md): every page
under 300 ms of server time.

    .venv/bin/python bench/pages.py [--repeat 5] [--cache DIR] [--fingerprints 10000]
        [--days 7] [--active 1000] [--rebuild]
    .venv/bin/python bench/pages.py --write-cost   # what the rollups add to each write

``--write-cost`` times ``write_windows`` of one poll (1,000 windows, none, a tenth or all with
latency sketches) into a fresh store with the rollups and without them (their merge turned off),
50 polls after 10 warm-up ones, medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pages_store

NOW = 1_800_000_000.0  # the store's "now": pages are read as if at this moment
GOAL_MS = 300.0


def pages(fingerprints: list[str], incident: str, deploys: list[str]) -> list[tuple[str, str]]:
    """(what, path) for every page, over the ranges people pick."""
    hot, bad = fingerprints[0], fingerprints[1]
    out = [(f"overview {r}", f"/?since={r}") for r in ("15m", "1h", "6h", "24h", "7d")]
    out += [
        (f"fingerprint (busiest) {r}", f"/fingerprints/{hot}?since={r}")
        for r in ("1h", "24h", "7d")
    ]
    out += [
        (f"fingerprint (bad deploy's) {r}", f"/fingerprints/{bad}?since={r}") for r in ("1h", "7d")
    ]
    out += [
        ("deploys 7d, page 1", "/deploys?since=7d"),
        ("deploys 7d, page 2", "/deploys?since=7d&page=2"),
        ("deploy (latest, bad)", f"/deploys/{deploys[-1]}"),
        ("deploy (5 days old)", f"/deploys/{deploys[len(deploys) // 4]}"),
        ("incidents 7d", "/incidents?since=7d"),
        ("incident", f"/incidents/{incident}"),
        ("postmortem", f"/incidents/{incident}/postmortem"),
        ("postmortem.md", f"/incidents/{incident}/postmortem.md"),
        ("canary", "/canary"),
        ("checks", "/checks"),
    ]
    return out


def write_cost() -> None:
    import random

    from querywatch.records import StatementWindow
    from querywatch.sketch import LatencySketch
    from querywatch.store import open_store, windows

    rng = random.Random(1)

    def poll(at: int, sketched: int) -> list[StatementWindow]:
        out = []
        for k in range(1000):
            sketch = None
            if k < sketched:
                sketch = LatencySketch()
                for _ in range(20):
                    sketch.add(rng.lognormvariate(1, 0.4))
            out.append(
                StatementWindow(
                    f"fp{k:05d}",
                    f"select {k}",
                    at,
                    20,
                    40.0,
                    5.0,
                    "postgres",
                    "app",
                    rows=3,
                    sketch=sketch,
                )
            )
        return out

    def median_ms(sketched: int, rollups: bool) -> float:
        keep = windows.rollups.add_windows
        if not rollups:
            windows.rollups.add_windows = lambda tx, batch: None  # type: ignore[assignment]
        try:
            with tempfile.TemporaryDirectory() as tmp, open_store(Path(tmp) / "s.sqlite3") as store:
                took = []
                for i in range(60):
                    batch = poll(1_700_000_000 + 10 * i, sketched)
                    started = time.perf_counter()
                    store.write_windows(batch)
                    took.append((time.perf_counter() - started) * 1000)
                return statistics.median(took[10:])
        finally:
            windows.rollups.add_windows = keep  # type: ignore[assignment]

    print(f"{'windows with sketches':<22} {'without rollups':>16} {'with':>8}")
    for sketched in (0, 100, 1000):
        without, with_ = median_ms(sketched, False), median_ms(sketched, True)
        print(f"{sketched:>5} of 1000          {without:13.1f} ms {with_:5.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "qw-bench")
    parser.add_argument("--fingerprints", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--active", type=int, default=1_000)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--write-cost", action="store_true")
    args = parser.parse_args()
    if args.write_cost:
        write_cost()
        return
    shape = pages_store.Shape(args.fingerprints, args.days, args.active)
    args.cache.mkdir(parents=True, exist_ok=True)
    path = args.cache / shape.name()
    if args.rebuild or not path.exists():
        print(f"building {path} ({shape})", flush=True)
        started = time.monotonic()
        counts = pages_store.build(path, shape, NOW)
        print(f"built in {time.monotonic() - started:.0f} s: {counts}", flush=True)
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

    from querywatch.incidents.repository import list_incidents
    from querywatch.store import open_store, rollup_reads
    from querywatch.web.app import create_app
    from querywatch.web.auth import access_for
    from querywatch.web.state import WebState, public_settings

    store = open_store(path)
    windows = store.transaction(lambda tx: tx.rows("SELECT COUNT(*) FROM windows"), write=False)
    top = store.transaction(lambda tx: rollup_reads.top(tx, NOW - 3600, NOW, 2), write=False)
    bad = pages_store.statement(pages_store.BAD_FP)
    from querywatch.sql import fingerprint

    incident = list_incidents(store, limit=1)[0].id
    deploys = [d.id for d in store.deploys()]
    state = WebState(
        store=store,
        access=access_for(None, no_auth=True, host="127.0.0.1"),
        clock=lambda: NOW,
        settings=public_settings({}),
    )
    client = TestClient(create_app(state), base_url="http://127.0.0.1")
    print(
        f"store: {path} ({path.stat().st_size / 2**30:.1f} GiB, {windows[0][0]:,} windows, "
        f"{shape.fingerprints:,} fingerprints, {shape.days} days); "
        f"first request, then median and worst of {args.repeat}",
        flush=True,
    )
    bad_fp = fingerprint(bad, "postgres").id
    hot = next(f.fingerprint for f in top if f.fingerprint != bad_fp)  # the busiest steady one
    fps = [hot, bad_fp]
    rows = []
    for what, url in pages(fps, incident, deploys):
        times = []
        size = 0
        for _ in range(args.repeat + 1):
            started = time.perf_counter()
            reply = client.get(url, headers={"accept": "text/html"})
            times.append((time.perf_counter() - started) * 1000)
            if reply.status_code != 200:
                raise SystemExit(f"{url}: {reply.status_code} {reply.text[:300]}")
            size = len(reply.content)
        rows.append((what, url, times[0], statistics.median(times[1:]), max(times[1:]), size))
    width = max(len(r[0]) for r in rows)
    print(f"\n{'page':<{width}}  {'first':>8}  {'median':>8}  {'worst':>8}  {'KiB':>6}")
    for what, _url, first, median, worst, size in rows:
        flag = "  OVER" if max(first, worst) > GOAL_MS else ""
        print(
            f"{what:<{width}}  {first:8.1f}  {median:8.1f}  {worst:8.1f}  {size / 1024:6.0f}{flag}"
        )
    slowest = max(max(r[2], r[4]) for r in rows)
    print(f"\nslowest request: {slowest:.0f} ms (goal: every page under {GOAL_MS:.0f} ms)")
    store.close()


if __name__ == "__main__":
    main()
