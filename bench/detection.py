"""Detection accuracy and speed over replays of the outage, side by side with benign deploys.

    .venv/bin/python bench/detection.py                 # 10 bad, 3 benign, 3 noisy replays
    .venv/bin/python bench/detection.py --bad 2 --benign 1 --noisy 1 --duration 60

Bad replays deploy v2 (a non-sargable hot query and an N+1 home page) under load with a
different load seed each; the figures are the time from v2 taking traffic to the first alert,
whether the top culprit is one of the queries v2 changed (read from the releases' source), and
whether the N+1 is found by the time of the rollback. Benign replays deploy the harmless v1.1;
noisy ones add bursty traffic (3x for 3 s of every 10 s) and a report query that is always slow.
Any alert in those is a false alert. Every replay runs the real shop, load and monitor.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import querywatch
from querywatch.demo.run import DemoOptions, DemoReport, run_demo
from querywatch.demo.shop.releases import BAD
from querywatch.detect.nplusone import detect_n_plus_one
from querywatch.store import open_store

SLOW_REPORT = (
    "SELECT product_id, count(*), sum(quantity) FROM order_items "
    "GROUP BY product_id ORDER BY 2 DESC LIMIT 5"
)


@dataclass
class Replay:
    kind: str
    seed: int
    alerts: int
    detect_after_s: float | None
    top_culprit_right: bool | None
    n_plus_one_found: bool | None
    users_affected_pct: float


class AlwaysSlowJob:
    """A reporting job that runs the same slow query every two seconds, deploy or not."""

    def __init__(self, shop: Path, store: Path) -> None:
        self.inst = querywatch.instrument(
            sqlite3.connect(shop, check_same_thread=False), sink=str(store), flush_interval=1.0
        )
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(2.0):
            self.inst.target.execute(SLOW_REPORT).fetchall()

    def __enter__(self) -> AlwaysSlowJob:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.inst.close()


def fresh_store(workdir: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        (workdir / f"querywatch.sqlite3{suffix}").unlink(missing_ok=True)


def judge(kind: str, seed: int, report: DemoReport) -> Replay:
    truth = {q.fingerprint for q in report.ground_truth}
    culprits = report.incident.culprits if report.incident else []
    n_plus_one: bool | None = None
    top: bool | None = None
    if kind == "bad":
        top = bool(culprits) and culprits[0].fingerprint in truth
        store = open_store(report.options.store_path)
        try:
            at = report.rollback.switched_at if report.rollback else time.time()
            marker = store.latest_deploy("demo")
            deploys = [d for d in store.deploys(environment="demo") if d.version == BAD]
            found = detect_n_plus_one(store, at, deploy=deploys[-1] if deploys else marker)
        finally:
            store.close()
        n_plus_one = any(d.confidence >= 0.8 and d.fingerprint in truth for d in found)
    return Replay(
        kind,
        seed,
        len(report.alerts),
        report.detect_after_s,
        top,
        n_plus_one,
        report.summary.users_affected_pct,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bad", type=int, default=10)
    parser.add_argument("--benign", type=int, default=3)
    parser.add_argument("--noisy", type=int, default=3)
    parser.add_argument("--duration", type=float, default=70.0)
    parser.add_argument("--scale", type=int, default=200_000)
    parser.add_argument("--workdir", type=Path, default=Path(".querywatch/bench-detection"))
    args = parser.parse_args()

    plan = [("bad", BAD, 1.0, False)] * args.bad + [("benign", "v1.1", 1.0, False)] * args.benign
    noisy = [
        ("noisy", "v1.1", 3.0, False),
        ("noisy", "v1.1", 1.0, True),
        ("noisy", "v1.1", 3.0, True),
    ]
    plan += (noisy * args.noisy)[: args.noisy]
    replays: list[Replay] = []
    print(f"{len(plan)} replays of {args.duration:g} s on SQLite, {args.scale:,} orders")
    for i, (kind, release, burst, slow) in enumerate(plan, start=1):
        fresh_store(args.workdir)
        options = DemoOptions(
            workdir=args.workdir,
            scale=args.scale,
            duration=args.duration,
            release=release,
            seed=i,
            burst_factor=burst,
        )
        if slow:
            args.workdir.mkdir(parents=True, exist_ok=True)
            from querywatch.demo.shop.seed import seed

            seed(options.shop_location, args.scale)
            with AlwaysSlowJob(Path(options.shop_location), options.store_path):
                report = run_demo(options)
        else:
            report = run_demo(options)
        r = judge(kind, i, report)
        replays.append(r)
        extra = (" bursty" if burst != 1.0 else "") + (" always-slow" if slow else "")
        print(
            f"  {i:2d} {kind:6}{extra:20} alerts={r.alerts} detect_after_s="
            f"{'-' if r.detect_after_s is None else f'{r.detect_after_s:.1f}'} "
            f"top_culprit_right={r.top_culprit_right} n_plus_one={r.n_plus_one_found} "
            f"users_affected={r.users_affected_pct:.0f}%",
            flush=True,
        )

    bad = [r for r in replays if r.kind == "bad"]
    quiet = [r for r in replays if r.kind != "bad"]
    times = [r.detect_after_s for r in bad if r.detect_after_s is not None]
    print()
    if bad:
        print(f"bad replays: {len(bad)}, detected {len(times)}/{len(bad)}")
        if times:
            print(
                f"time to detect: median {statistics.median(times):.1f} s, max {max(times):.1f} s"
                f" (goal: within 30 s)"
            )
        print(f"top culprit right: {sum(bool(r.top_culprit_right) for r in bad)}/{len(bad)}")
        print(f"N+1 found by the rollback: {sum(bool(r.n_plus_one_found) for r in bad)}/{len(bad)}")
    if quiet:
        print(
            f"false alerts over {len(quiet)} benign and noisy replays: "
            f"{sum(r.alerts for r in quiet)} (goal: 0)"
        )


if __name__ == "__main__":
    main()
