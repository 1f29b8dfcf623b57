"""The demo's canary over many replays: users affected, time to abort, false aborts.

    .venv/bin/python bench/canary.py                    # 10 bad, 2 all-at-once, 10 benign, 5 noisy
    .venv/bin/python bench/canary.py --bad 3 --all-at-once 2 --benign 4 --noisy 3 --duration 80

Bad replays deploy v2 (a non-sargable hot query and an N+1 home page) as a canary at
``--canary-weight`` percent of users, each with its own load seed; the figures are the users
affected (an error or a page slower than 1 s on v2, over every user), seconds from the canary
taking traffic to taking none (``abort_after_s``), who aborted it, and whether v1 served every
request afterwards. All-at-once replays deploy the same v2 to every user (``--no-canary``), for the
figures side by side. Benign replays deploy the harmless v1.1 as a canary; noisy ones add bursty
traffic (3x for 3 s of every 10 s) and a report query that is always slow (bench/detection.py's
noise). A benign or noisy canary should be promoted; an abort is a false abort. Every replay runs
the real shop, load, capture, canary analysis and monitor. Targets (issue 12): users affected
<= 10%, abort within 20 s of taking traffic, 0 false aborts in at least 10 benign replays.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

sys.path.insert(0, str(Path(__file__).parent))

from detection import AlwaysSlowJob, fresh_store
from querywatch.demo.canary import CANARY_AGENT, CanaryPlan
from querywatch.demo.run import DemoOptions, DemoReport, run_demo
from querywatch.demo.shop.releases import BAD, GOOD
from querywatch.demo.shop.seed import seed


@dataclass
class Replay:
    kind: str  # bad, all-at-once, benign, noisy
    seed: int
    status: str  # aborted, promoted, rolled back, none
    aborted_by: str | None
    abort_after_s: float | None
    users_affected_pct: float
    users_in_canary: int
    v1_after: bool | None  # every request after the abort served by v1
    completed: bool


def judge(kind: str, seed_: int, report: DemoReport) -> Replay:
    canary = report.canary
    back = report.rollback
    v1_after: bool | None = None
    if back is not None:
        after = [r for r in report.records if r.scheduled_at > back.finished_at + 0.05]
        v1_after = bool(after) and all(r.release == GOOD for r in after if not r.failed)
    if canary is not None:
        status, by, after_s = canary.status, canary.aborted_by, canary.abort_after_s
        met = canary.users(report.records, report.summary.slo_ms)[0]
    else:
        status = "rolled back" if back is not None else "none"
        by = report.rollback_by
        after_s = back.switched_at - report.bad.switched_at if back and report.bad else None
        met = report.summary.users_total
    return Replay(
        kind,
        seed_,
        status,
        by,
        after_s,
        report.summary.users_affected_pct,
        met,
        v1_after,
        report.completed,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bad", type=int, default=10)
    parser.add_argument("--all-at-once", type=int, default=2)
    parser.add_argument("--benign", type=int, default=10)
    parser.add_argument("--noisy", type=int, default=5)
    parser.add_argument("--duration", type=float, default=100.0)
    parser.add_argument("--scale", type=int, default=1_000_000)
    parser.add_argument("--canary-weight", type=float, default=10.0)
    parser.add_argument("--workdir", type=Path, default=Path(".querywatch/bench-canary"))
    args = parser.parse_args()

    plan: list[tuple[str, str, float, bool]] = [("bad", BAD, 1.0, False)] * args.bad
    plan += [("all-at-once", BAD, 1.0, False)] * args.all_at_once
    plan += [("benign", "v1.1", 1.0, False)] * args.benign
    noisy = [("noisy", "v1.1", 3.0, False), ("noisy", "v1.1", 1.0, True)]
    noisy += [("noisy", "v1.1", 3.0, True)]
    plan += (noisy * args.noisy)[: args.noisy]
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(
        f"{len(plan)} replays of {args.duration:g} s on SQLite, {args.scale:,} orders, "
        f"canary at {args.canary_weight:g}%",
        flush=True,
    )
    seed(str(args.workdir / "shop.sqlite3"), args.scale)
    replays: list[Replay] = []
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns) as progress:
        task = progress.add_task("replays", total=len(plan))
        for i, (kind, release, burst, slow) in enumerate(plan, start=1):
            progress.update(task, description=f"replay {i}: {kind} {release}")
            fresh_store(args.workdir)
            options = DemoOptions(
                workdir=args.workdir,
                scale=args.scale,
                duration=args.duration,
                release=release,
                seed=i,
                burst_factor=burst,
                canary=None if kind == "all-at-once" else CanaryPlan(args.canary_weight),
            )
            if slow:
                with AlwaysSlowJob(Path(options.shop_location), options.store_path):
                    report = run_demo(options)
            else:
                report = run_demo(options)
            r = judge(kind, i, report)
            replays.append(r)
            extra = (" bursty" if burst != 1.0 else "") + (" always-slow" if slow else "")
            after = "-" if r.abort_after_s is None else f"{r.abort_after_s:.1f}"
            progress.console.print(
                f"  {i:2d} {kind:11}{extra:20} {r.status:11} by={r.aborted_by or '-'} "
                f"abort_after_s={after} users_affected={r.users_affected_pct:.1f}% "
                f"users_met_v2={r.users_in_canary} v1_after={r.v1_after} "
                f"completed={r.completed}"
            )
            progress.advance(task)

    print()
    report_figures(replays, args.canary_weight)


def report_figures(replays: list[Replay], weight: float) -> None:
    for kind in ("bad", "all-at-once"):
        group = [r for r in replays if r.kind == kind]
        if not group:
            continue
        pct = [r.users_affected_pct for r in group]
        times = [r.abort_after_s for r in group if r.abort_after_s is not None]
        label = f"bad v2 as a canary at {weight:g}%" if kind == "bad" else "bad v2 all at once"
        print(f"{label}: {len(group)} replays")
        print(
            f"  users affected: median {statistics.median(pct):.1f}%, max {max(pct):.1f}%"
            + (" (target <= 10%)" if kind == "bad" else "")
        )
        if times:
            what = "abort (v2 takes no traffic)" if kind == "bad" else "rollback (v1 serves)"
            print(
                f"  {what} after: median {statistics.median(times):.1f} s, max {max(times):.1f} s"
                + (" (target <= 20 s)" if kind == "bad" else "")
            )
        if kind == "bad":
            by = sum(r.aborted_by == CANARY_AGENT for r in group)
            print(f"  aborted by the canary analysis: {by}/{len(group)}")
        print(f"  v1 serving all traffic afterwards: {sum(bool(r.v1_after) for r in group)}")
    quiet = [r for r in replays if r.kind in ("benign", "noisy")]
    if quiet:
        promoted = sum(r.status == "promoted" for r in quiet)
        aborted = sum(
            r.status == "aborted" and r.aborted_by != "the demo (no verdict in time)" for r in quiet
        )
        print(
            f"benign and noisy canaries: {len(quiet)} replays, promoted {promoted}, "
            f"false aborts {aborted} (target 0), no verdict in time "
            f"{sum(r.aborted_by == 'the demo (no verdict in time)' for r in quiet)}"
        )


if __name__ == "__main__":
    main()
