"""Memory of one detection pass: 30 minutes of windows of 1,000 fingerprints in a store.

`querywatch watch` runs the detectors after every poll; they read ``baseline_seconds`` (30 min)
of every changing fingerprint's 10-s windows. This fills a SQLite store file with that much
(pg_stat_statements-like windows by default: totals, no per-call sketch; ``--sketches`` for
in-app capture's), then runs ``Detector.detect`` once under tracemalloc and reports the peak
traced Python memory of the pass, its CPU time, and the peak RSS it added (``/proc/self/
clear_refs`` resets VmHWM first, where allowed). Two passes: without a deploy (the trailing
baseline against the recent windows) and with a deploy five minutes ago (its before and after
too). Then the pass `watch` runs at the next poll, keeping what the last one read
(``Detector(reuse_seconds=)``, see querywatch.detect.look_back).

``--compare REV`` runs the same measurement first with the code of git revision REV (a
``git archive`` of its src/ on PYTHONPATH, in a subprocess) and prints both side by side.

    .venv/bin/python bench/detection_memory.py [--fingerprints 1000] [--minutes 30]
        [--sketches] [--compare 806ae18]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
T_END = 1_700_003_600.0  # "now": an hour of windows before it would all be read at most


def text(k: int) -> str:
    """A web app's statement, ~150 characters, its own fingerprint per k."""
    return (
        f"select o.id, o.status, o.total_cents, o.created_at from qw_orders_{k} o "
        "where o.customer_id = ? and o.status <> ? order by o.created_at desc limit ?"
    )


def fill(store: Any, fingerprints: int, minutes: int, sketches: bool) -> int:
    from querywatch.records import StatementWindow
    from querywatch.sketch import LatencySketch
    from querywatch.sql import fingerprint

    rng = random.Random(11)
    fps = [fingerprint(text(k), "postgres") for k in range(fingerprints)]
    start = int(T_END) - minutes * 60 - 10
    written = 0
    for ws in range(start, int(T_END) + 1, 10):
        batch = []
        for fp in fps:
            calls = rng.randint(1, 3)
            lat = [0.3 * rng.lognormvariate(0, 0.3) for _ in range(calls)]
            sketch = None
            if sketches:
                sketch = LatencySketch()
                for v in lat:
                    sketch.add(v)
            batch.append(
                StatementWindow(
                    fp.id,
                    fp.normalized,
                    ws,
                    calls,
                    sum(lat),
                    max(lat),
                    source="app" if sketches else "pg_stat_statements",
                    rows=calls * 20,
                    shared_blks_hit=calls * 30,
                    sketch=sketch,
                )
            )
        store.write_windows(batch)  # one poll's windows at a time, as the agent writes them
        written += len(batch)
    return written


def reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from querywatch.detect.regression import Detector
    from querywatch.records import DeployMarker
    from querywatch.store import open_store

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "store.sqlite3")
        t0 = time.perf_counter()
        out["windows"] = fill(store, args.fingerprints, args.minutes, args.sketches)
        out["fill_s"] = time.perf_counter() - t0
        deploy = DeployMarker(
            "d1", "v2", "c0ffee1", "production", T_END - 300, T_END - 295, "ci", "v1"
        )
        for name in ("no deploy", "deploy 5 min ago"):
            if name != "no deploy":
                store.record_deploy(deploy)
            detector = Detector(store)
            detector.detect(T_END)  # warm: imports, SQLite's page cache, the store's statements
            rss_reset = reset_peak_rss()
            rss0 = status_kib("VmRSS")
            tracemalloc.start()
            cpu0 = time.process_time()
            found = detector.detect(T_END)
            cpu = time.process_time() - cpu0
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            out[name] = {
                "peak_traced_mib": peak / 2**20,
                "cpu_s_traced": cpu,
                "rss_added_mib": (status_kib("VmHWM") - rss0) / 1024 if rss_reset else None,
                "detections": len(found),
            }
            t1 = time.process_time()
            detector.detect(T_END)
            out[name]["cpu_s"] = time.process_time() - t1
            try:  # as `watch` runs it: what the last pass read is kept (--compare: older code)
                kept = Detector(store, reuse_seconds=300.0)
            except TypeError:
                kept = Detector(store)
            kept.detect(T_END - 10)
            t2 = time.process_time()
            kept.detect(T_END)
            out[name]["cpu_s_next_poll"] = time.process_time() - t2
        store.close()
    return out


def run_at(rev: str, argv: list[str]) -> dict[str, Any]:
    """The measurement with the code of ``rev``, in a fresh interpreter."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", rev, "src"], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        env = {**os.environ, "PYTHONPATH": str(Path(tmp) / "src")}
        done = subprocess.run(
            [sys.executable, __file__, *argv, "--json"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fingerprints", type=int, default=1000)
    parser.add_argument("--minutes", type=int, default=30, help="minutes of windows stored")
    parser.add_argument("--sketches", action="store_true", help="in-app windows with sketches")
    parser.add_argument("--compare", metavar="REV", help="measure REV's code first, side by side")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.json:
        print(json.dumps(measure(args)))
        return 0
    argv = [f"--fingerprints={args.fingerprints}", f"--minutes={args.minutes}"]
    if args.sketches:
        argv.append("--sketches")
    results = []
    if args.compare:
        results.append((args.compare, run_at(args.compare, argv)))
    results.append(("this tree", json.loads(json.dumps(measure(args)))))
    first = results[0][1]
    print(
        f"one detection pass over {args.minutes} min x {args.fingerprints:,} fingerprints "
        f"({first['windows']:,} windows, "
        f"{'in-app with sketches' if args.sketches else 'pg_stat_statements-like'}, SQLite)"
    )
    for name in ("no deploy", "deploy 5 min ago"):
        print(f"  {name}:")
        for label, r in results:
            m = r[name]
            rss = "n/a" if m["rss_added_mib"] is None else f"{m['rss_added_mib']:.1f} MiB"
            print(
                f"    {label:>10}: peak traced {m['peak_traced_mib']:7.1f} MiB, "
                f"RSS added {rss:>9}, CPU {m['cpu_s']:.2f} s "
                f"({m['cpu_s_traced']:.2f} s traced), {m['detections']} detections; "
                f"the next poll's pass, as watch keeps what it read: CPU "
                f"{m['cpu_s_next_poll']:.3f} s"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
