"""The agent's footprint: RSS and CPU of `querywatch watch` tracking 10,000 fingerprints.

Starts a throwaway cluster with ``pg_stat_statements.max`` raised above ``--fingerprints``, fills
pg_stat_statements with that many distinct statements (each run once, so each is an entry), then
runs ``querywatch watch --no-live`` on it for ``--duration`` seconds while a load process keeps
``--active`` of those statements changing (each of them runs once per poll interval, spread
evenly). The watch process's RSS (VmRSS, and its peak VmHWM) and CPU time (utime + stime from
/proc) are sampled every half second. CPU is reported as a share of one core over the run after
the first poll (which reads every query text once), and separately for the first poll.

    .venv/bin/python bench/agent_footprint.py [--fingerprints 10000] [--active 1000]
        [--interval 10] [--duration 180] [--no-detect] [--store sqlite|postgres]

Goal (DESIGN.md, issue 11): under 60 MB RSS at 10,000 fingerprints and under 5% of a core at
the default interval (10 s). Detection's read grows until ``baseline_seconds`` (30 min) are
stored: run ``--duration 1900`` for the full look-back; the CPU of the last five minutes is then
reported too.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

APP_DB = "qw_bench_footprint"
STORE_DB = "qw_bench_footprint_store"
TICK = os.sysconf("SC_CLK_TCK")
LAST_S = 300  # the steady state's CPU is also reported over the run's last five minutes


_COLUMNS = (
    "o.id",
    "o.status",
    "o.total_cents",
    "o.created_at",
    "o.customer_id",
    "lower(o.status)",
    "upper(o.status)",
    "o.total_cents * 2",
    "length(o.status)",
    "date_trunc('day', o.created_at)",
    "o.total_cents / 100",
    "coalesce(o.status, 'none')",
    "o.customer_id %% 7",
    "o.id + o.customer_id",
)


def statement(k: int) -> str:
    """The k-th distinct statement: a web app's read with its own select list (one subset of
    columns per k), so that it is its own pg_stat_statements entry and its own fingerprint;
    an alias alone would not be (pg_stat_statements ignores aliases)."""
    columns = [c for bit, c in enumerate(_COLUMNS) if (k + 1) >> bit & 1]
    return (
        f"SELECT {', '.join(columns)} FROM qw_orders o WHERE o.customer_id = %s "
        "AND o.status <> 'cancelled' LIMIT 20"
    )


def fill(dsn: str, n: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for k in range(n):
            conn.execute(statement(k), (k,)).fetchall()


def load(dsn: str, active: int, interval: float, stop_at: float) -> int:
    """Run each of the first ``active`` statements once per ``interval``, evenly spread."""
    rate = active / interval
    done = 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        t0 = time.perf_counter()
        while time.time() < stop_at:
            due = t0 + done / rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(min(wait, 0.5))
                continue
            conn.execute(statement(done % active), (done,)).fetchall()
            done += 1
    return done


@dataclass
class Sample:
    at: float
    rss_kib: int
    hwm_kib: int
    cpu_s: float


def sample(pid: int) -> Sample | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    if "VmRSS" not in fields:
        return None  # exited, not yet reaped: a zombie has no memory to report
    # utime and stime are fields 14 and 15; the command name (field 2) may hold spaces.
    rest = stat.rsplit(")", 1)[1].split()
    cpu = (int(rest[11]) + int(rest[12])) / TICK
    return Sample(
        time.monotonic(),
        int(fields["VmRSS"].split()[0]),
        int(fields["VmHWM"].split()[0]),
        cpu,
    )


@contextlib.contextmanager
def server(fingerprints: int) -> Iterator[str]:
    from pg_cluster import running_cluster

    settings = {"pg_stat_statements.max": str(max(5000, fingerprints + 2000))}
    with running_cluster(settings) as started:
        yield started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fingerprints", type=int, default=10_000)
    parser.add_argument(
        "--active", type=int, default=1000, help="statements that change in every poll"
    )
    parser.add_argument("--interval", type=float, default=10.0, help="watch --interval")
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of watch")
    parser.add_argument("--no-detect", action="store_true", help="watch --no-detect")
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--querywatch", default=str(Path(sys.executable).parent / "querywatch"))
    args = parser.parse_args()

    with server(args.fingerprints) as admin, tempfile.TemporaryDirectory() as tmp:
        base = admin.rsplit("/", 1)[0]
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{APP_DB}"')
            conn.execute(f'CREATE DATABASE "{STORE_DB}"')
        app = f"{base}/{APP_DB}"
        with psycopg.connect(app, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
            conn.execute(
                "CREATE TABLE qw_orders (id int PRIMARY KEY, customer_id int NOT NULL, "
                "status text NOT NULL, total_cents int NOT NULL, created_at timestamptz NOT NULL)"
            )
            conn.execute(
                "INSERT INTO qw_orders SELECT g, g % 5000, 'paid', g, now() "
                "FROM generate_series(1, 50000) g"
            )
            conn.execute("CREATE INDEX ON qw_orders (customer_id, created_at)")
            conn.execute("ANALYZE qw_orders")
        t0 = time.perf_counter()
        fill(app, args.fingerprints)
        with psycopg.connect(app, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_statements "
                "WHERE query LIKE '%FROM qw_orders o WHERE%'"
            ).fetchone()
        entries = int(row[0]) if row else 0
        took = time.perf_counter() - t0
        print(f"filled pg_stat_statements with {entries:,} entries in {took:.0f} s")
        store = str(Path(tmp) / "store.sqlite3") if args.store == "sqlite" else f"{base}/{STORE_DB}"
        cmd = [
            args.querywatch,
            "watch",
            "--dsn",
            app,
            "--store",
            store,
            "--no-live",
            "--interval",
            f"{args.interval:g}",
            "--duration",
            f"{args.duration:g}",
        ]
        if args.no_detect:
            cmd.append("--no-detect")
        env = {k: v for k, v in os.environ.items() if not k.startswith("QUERYWATCH_")}
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(1) as pool:
            stop_at = time.time() + args.duration + 5
            issued = pool.apply_async(load, (app, args.active, args.interval, stop_at))
            log = Path(tmp) / "watch.log"
            with log.open("w") as out:
                started = time.monotonic()
                proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
                samples: list[Sample] = []
                while proc.poll() is None:
                    s = sample(proc.pid)
                    if s is not None:
                        samples.append(s)
                    time.sleep(0.5)
            statements = issued.get(timeout=args.duration + 60)
        if proc.returncode != 0:
            print(log.read_text()[-3000:])
            return 1
        lines = log.read_text().splitlines()

    # The first poll reads every text and fingerprints it: measured apart from the steady state.
    first_end = started + min(args.interval, args.duration) - 0.5
    steady = [s for s in samples if s.at >= first_end]
    first = [s for s in samples if s.at < first_end]
    cpu_first = first[-1].cpu_s if first else 0.0
    cpu_share = (steady[-1].cpu_s - steady[0].cpu_s) / (steady[-1].at - steady[0].at)
    rss = [s.rss_kib for s in steady]
    print(
        f"watch --interval {args.interval:g} for {args.duration:g} s "
        f"({'no detection' if args.no_detect else 'detection on'}, {args.store} store): "
        f"{args.fingerprints:,} entries, {args.active:,} changing every poll "
        f"({statements:,} statements run by the load)"
    )
    print(f"  first poll (baseline, all texts): {cpu_first:.2f} s CPU")
    print(
        f"  CPU after the first poll: {cpu_share * 100:.1f}% of a core "
        f"({steady[-1].cpu_s - steady[0].cpu_s:.1f} s over {steady[-1].at - steady[0].at:.0f} s)"
    )
    print(
        f"  RSS after the first poll: {rss[0] / 1024:.1f} MiB, "
        f"at the end {rss[-1] / 1024:.1f} MiB, max sampled {max(rss) / 1024:.1f} MiB, "
        f"peak (VmHWM) {samples[-1].hwm_kib / 1024:.1f} MiB"
    )
    # Detection reads baseline_seconds (30 min) back: once that is full, each pass costs the most.
    last = [s for s in steady if s.at >= steady[-1].at - LAST_S]
    if steady[-1].at - steady[0].at > 2 * LAST_S and len(last) > 1:
        share = (last[-1].cpu_s - last[0].cpu_s) / (last[-1].at - last[0].at)
        print(f"  CPU over the last {LAST_S} s: {share * 100:.1f}% of a core")
    print(f"  watch said: {lines[-1] if lines else '(nothing)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
