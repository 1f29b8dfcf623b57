"""Response time over replays of the outage: bad deploy → detection → rollback → recovery.

    .venv/bin/python bench/response.py                  # 10 replays of 100 s on SQLite
    .venv/bin/python bench/response.py --replays 2 --duration 80

Each replay runs the real shop under load, deploys v2, and lets querywatch do the rest by itself:
the monitor detects and attributes, the responder re-checks the evidence and rolls back through
the guarded path, verifies recovery against the baseline, runs the cache-flush runbook step,
resolves the incident and writes the postmortem. The figures are measured from v2 taking
traffic; the goal is a completed rollback within 2 minutes in every replay (the report: 150
minutes, 87% of users affected).
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass
from pathlib import Path

from querywatch.demo.run import DemoOptions, DemoReport, run_demo

GOAL_S = 120.0
REPORT_MINUTES = 150
REPORT_AFFECTED_PCT = 87


@dataclass
class Replay:
    seed: int
    detect_s: float | None
    rollback_s: float | None
    recovered_s: float | None
    recovered: bool | None
    users_affected_pct: float
    postmortem: bool


def fresh_store(workdir: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        (workdir / f"querywatch.sqlite3{suffix}").unlink(missing_ok=True)


def measure(seed: int, report: DemoReport) -> Replay:
    bad = report.bad.switched_at if report.bad else None
    recovered_s = (
        report.recovered_at - bad if report.recovered_at is not None and bad is not None else None
    )
    return Replay(
        seed,
        report.detect_after_s,
        report.mitigate_after_s,
        recovered_s,
        report.recovered,
        report.summary.users_affected_pct,
        report.postmortem_path is not None and report.postmortem_path.exists(),
    )


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _spread(name: str, values: list[float], of: int) -> None:
    if not values:
        print(f"{name}: none of {of}")
        return
    print(
        f"{name}: {len(values)}/{of}, median {statistics.median(values):.1f} s, "
        f"max {max(values):.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replays", type=int, default=10)
    parser.add_argument("--duration", type=float, default=100.0)
    parser.add_argument("--scale", type=int, default=200_000)
    parser.add_argument("--workdir", type=Path, default=Path(".querywatch/bench-response"))
    args = parser.parse_args()

    print(f"{args.replays} replays of {args.duration:g} s on SQLite, {args.scale:,} orders")
    replays: list[Replay] = []
    for seed in range(1, args.replays + 1):
        fresh_store(args.workdir)
        options = DemoOptions(
            workdir=args.workdir, scale=args.scale, duration=args.duration, seed=seed
        )
        r = measure(seed, run_demo(options))
        replays.append(r)
        print(
            f"  {seed:2d} detect={_s(r.detect_s)} s rollback_complete={_s(r.rollback_s)} s "
            f"recovered={r.recovered} at {_s(r.recovered_s)} s "
            f"users_affected={r.users_affected_pct:.0f}% postmortem={r.postmortem}",
            flush=True,
        )

    n = len(replays)
    print()
    _spread("detected", [r.detect_s for r in replays if r.detect_s is not None], n)
    rollbacks = [r.rollback_s for r in replays if r.rollback_s is not None]
    _spread("rollback complete", rollbacks, n)
    _spread("recovery verified", [r.recovered_s for r in replays if r.recovered_s is not None], n)
    within = sum(1 for s in rollbacks if s <= GOAL_S)
    print(f"rollback complete within {GOAL_S:.0f} s of the bad deploy: {within}/{n} (goal: all)")
    affected = [r.users_affected_pct for r in replays]
    print(
        f"users affected (error or slower than the SLO while v2 served): median "
        f"{statistics.median(affected):.0f}%, max {max(affected):.0f}% "
        f"(the report: {REPORT_AFFECTED_PCT}% over {REPORT_MINUTES} minutes)"
    )
    print(f"postmortems written: {sum(r.postmortem for r in replays)}/{n}")


if __name__ == "__main__":
    main()
