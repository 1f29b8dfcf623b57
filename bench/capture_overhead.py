"""What in-app capture adds per statement: bare psycopg vs querywatch vs OpenTelemetry, one run.

Goal (DESIGN.md): at most 2 µs added per statement and at least 15x cheaper than OpenTelemetry's
psycopg instrumentation. Configurations run interleaved (A, B, C, A, B, C, ...) on their own
loopback connections to the same server so drift and noise hit all of them alike; the median
µs/statement per configuration is reported. A second figure is measured in place: the time spent
inside ``StatementChannel.record`` right after each real round trip (outside and inside a request
context), and the flusher thread's batch aggregation per statement. A third, network-free figure
times sqlite3 in-memory ``SELECT 1`` bare vs instrumented, which isolates the wrapper's own cost.

    .venv/bin/python bench/capture_overhead.py [--dsn postgresql://...] [--rounds 7] [-n 20000]

Without ``--dsn`` a throwaway cluster is started with tests/pg_cluster.py.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import querywatch
from querywatch.capture.context import TRACKING, RequestState, current_request
from querywatch.capture.recorder import Recorder

POINT = "SELECT name FROM items WHERE id = %s"


@contextlib.contextmanager
def postgres(dsn: str | None) -> Iterator[str]:
    if dsn:
        yield dsn
        return
    from pg_cluster import running_cluster

    with running_cluster() as started:
        yield started


def prepare(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS qw_bench_items")
        conn.execute("CREATE TABLE qw_bench_items (id int PRIMARY KEY, name text NOT NULL)")
        conn.execute(
            "INSERT INTO qw_bench_items SELECT g, 'item-' || g FROM generate_series(0, 999) g"
        )
        conn.execute("ANALYZE qw_bench_items")


def point_loop(conn: psycopg.Connection[Any], n: int) -> tuple[float, float]:
    """µs per point query (execute + fetchone), the statement shape of a web request: wall time,
    and this thread's CPU time, which leaves out the wait on the server and so shows what the
    instrumentation itself costs the application with far less noise."""
    query = POINT.replace("items", "qw_bench_items")
    execute = conn.execute
    t0, c0 = time.perf_counter(), time.thread_time()
    for i in range(n):
        execute(query, (i % 1000,)).fetchone()
    return (time.perf_counter() - t0) / n * 1e6, (time.thread_time() - c0) / n * 1e6


def otel_connection(dsn: str) -> tuple[psycopg.Connection[Any], Callable[[], None]]:
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    conn = psycopg.connect(dsn, autocommit=True)
    PsycopgInstrumentor().instrument_connection(conn, tracer_provider=provider)

    def reset() -> None:
        provider.force_flush()
        exporter.clear()

    return conn, reset


def network(dsn: str, rounds: int, n: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    prepare(dsn)
    bare = psycopg.connect(dsn, autocommit=True)
    qw_conn = psycopg.connect(dsn, autocommit=True)
    inst = querywatch.instrument(qw_conn)  # default in-memory sink, flusher thread running
    otel, otel_reset = otel_connection(dsn)
    configs: list[tuple[str, psycopg.Connection[Any], Callable[[], None]]] = [
        ("bare psycopg", bare, lambda: None),
        ("psycopg + querywatch", qw_conn, lambda: None),
        ("psycopg + OpenTelemetry", otel, otel_reset),
    ]
    results: dict[str, list[float]] = {name: [] for name, _, _ in configs}
    cpu: dict[str, list[float]] = {name: [] for name, _, _ in configs}
    for _, conn, _ in configs:  # warm up: prepared plans, caches, fingerprints
        point_loop(conn, 2000)
    for r in range(rounds):
        for name, conn, reset in configs:
            gc.collect()
            wall, used = point_loop(conn, n)
            results[name].append(wall)
            cpu[name].append(used)
            reset()
        print(
            f"  round {r + 1}/{rounds}: "
            + ", ".join(f"{name} {vals[-1]:.2f}" for name, vals in results.items()),
            flush=True,
        )
    calls = sum(w.calls for w in _flushed(inst))
    expected = 2000 + rounds * n
    assert calls == expected, f"querywatch recorded {calls} statements, expected {expected}"
    inst.close()
    for _, conn, _ in configs:
        conn.close()
    return results, cpu


def _flushed(inst: querywatch.Instrumentation) -> list[Any]:
    inst.flush()
    sink = inst.recorder.sink
    return list(getattr(sink, "windows", []))


class _TimedChannel:
    """Stands in for the channel on the cursor class and times the real ``record`` in place."""

    def __init__(self, channel: Any) -> None:
        self.channel = channel
        self.ns = 0
        self.calls = 0

    def record(self, sql: object, t0: int, t1: int, rows: int, errors: int) -> None:
        a = time.perf_counter_ns()
        self.channel.record(sql, t0, t1, rows, errors)
        self.ns += time.perf_counter_ns() - a
        self.calls += 1


class _EmptyChannel(_TimedChannel):
    """The timer alone, subtracted from the figures above."""

    def record(self, sql: object, t0: int, t1: int, rows: int, errors: int) -> None:
        a = time.perf_counter_ns()
        self.ns += time.perf_counter_ns() - a
        self.calls += 1


def in_place(dsn: str, rounds: int, n: int) -> dict[str, list[float]]:
    """ns per statement spent in ``record`` after a real psycopg round trip, and in ``absorb``.

    The recorder here never wakes its flusher (huge ``pending_wake``), so each round's raw
    records are aggregated by one timed ``absorb()`` call: the flusher's cost per statement.
    """
    conn = psycopg.connect(dsn, autocommit=True)
    recorder = Recorder(None, flush_interval=3600)
    agg = recorder.aggregator
    agg.pending_wake = agg.pending_max = 10**9
    inst = querywatch.instrument(conn, recorder=recorder)
    cls: Any = conn.cursor_factory
    real = cls._qw_channel
    out: dict[str, list[float]] = {
        "record(), no request active": [],
        "record(), inside a request": [],
        "timer alone (subtracted)": [],
        "flusher absorb() per statement": [],
    }
    point_loop(conn, 2000)
    agg.absorb()
    tracking = TRACKING.on
    try:
        for _ in range(rounds):
            for name in out:
                if name.startswith("flusher"):
                    continue
                timed = _EmptyChannel(real) if name.startswith("timer") else _TimedChannel(real)
                cls._qw_channel = timed
                token = None
                if "inside" in name:
                    TRACKING.on = True
                    token = current_request.set(RequestState())
                gc.collect()
                point_loop(conn, n)
                if token is not None:
                    current_request.reset(token)
                    TRACKING.on = tracking
                out[name].append(timed.ns / timed.calls)
            pending = len(agg.pending)
            a = time.perf_counter_ns()
            agg.absorb()
            out["flusher absorb() per statement"].append((time.perf_counter_ns() - a) / pending)
    finally:
        cls._qw_channel = real
        TRACKING.on = tracking
    timer = statistics.median(out["timer alone (subtracted)"])
    for name in ("record(), no request active", "record(), inside a request"):
        out[name] = [v - timer for v in out[name]]
    inst.close()
    conn.close()
    return out


def micro(rounds: int, n: int) -> dict[str, list[float]]:
    bare = sqlite3.connect(":memory:")
    inst = querywatch.instrument(sqlite3.connect(":memory:"))
    cur_bare, cur_qw = bare.cursor(), inst.target.cursor()

    def loop(execute: Callable[[str], Any]) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            execute("SELECT 1")
        return (time.perf_counter() - t0) / n * 1e9

    configs: list[tuple[str, Callable[[str], Any]]] = [
        ("sqlite3 cursor.execute bare", cur_bare.execute),
        ("sqlite3 cursor.execute + querywatch", cur_qw.execute),
        ("sqlite3 conn.execute bare", bare.execute),
        ("sqlite3 conn.execute + querywatch", inst.target.execute),
    ]
    results: dict[str, list[float]] = {name: [] for name, _ in configs}
    for _, execute in configs:
        loop(execute)
    for _ in range(rounds):
        for name, execute in configs:
            results[name].append(loop(execute))
    inst.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", help="a PostgreSQL to run against (default: a throwaway one)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("-n", type=int, default=20_000, help="statements per config per round")
    parser.add_argument("--micro-n", type=int, default=200_000)
    args = parser.parse_args()

    print(
        f"Python {sys.version.split()[0]}, psycopg {psycopg.__version__}, "
        f"{args.rounds} interleaved rounds x {args.n} point queries per config (loopback)"
    )
    with postgres(args.dsn) as dsn:
        net, cpu = network(dsn, args.rounds, args.n)
        placed = in_place(dsn, args.rounds, args.n)
    med = {name: statistics.median(v) for name, v in net.items()}
    base = med["bare psycopg"]
    print(f"\n{'configuration':28} {'median µs/stmt':>15} {'added µs':>10} {'min':>8} {'max':>8}")
    for name, v in net.items():
        added = "" if name == "bare psycopg" else f"{med[name] - base:+.2f}"
        print(f"{name:28} {med[name]:15.2f} {added:>10} {min(v):8.2f} {max(v):8.2f}")
    ours = med["psycopg + querywatch"] - base
    theirs = med["psycopg + OpenTelemetry"] - base
    # The paired per-round difference is steadier than the difference of medians.
    paired = statistics.median(
        q - b for q, b in zip(net["psycopg + querywatch"], net["bare psycopg"], strict=True)
    )
    print(
        f"\nquerywatch adds {ours:.2f} µs/stmt (paired per-round median {paired:.2f}); "
        f"OpenTelemetry adds {theirs:.2f} µs/stmt"
    )
    if ours > 0:
        print(f"OpenTelemetry's added cost / querywatch's: {theirs / ours:.1f}x")

    cmed = {name: statistics.median(v) for name, v in cpu.items()}
    print("\nclient CPU time per statement (same runs; excludes waiting on the server)")
    print(f"{'configuration':28} {'median µs/stmt':>15} {'added µs':>10}")
    for name in cpu:
        added = "" if name == "bare psycopg" else f"{cmed[name] - cmed['bare psycopg']:+.2f}"
        print(f"{name:28} {cmed[name]:15.2f} {added:>10}")
    ours_cpu = cmed["psycopg + querywatch"] - cmed["bare psycopg"]
    theirs_cpu = cmed["psycopg + OpenTelemetry"] - cmed["bare psycopg"]
    if ours_cpu > 0:
        print(f"OpenTelemetry's added CPU / querywatch's: {theirs_cpu / ours_cpu:.1f}x")

    print("\nmeasured in place after each psycopg round trip (same server, ns per statement)")
    print(f"{'where':38} {'median ns':>10} {'min':>8} {'max':>8}")
    for name, v in placed.items():
        print(f"{name:38} {statistics.median(v):10.0f} {min(v):8.0f} {max(v):8.0f}")

    mic = micro(args.rounds, args.micro_n)
    mmed = {name: statistics.median(v) for name, v in mic.items()}
    print(f"\nno network ({args.rounds} rounds x {args.micro_n} `SELECT 1` on sqlite3 :memory:)")
    print(f"{'configuration':38} {'median ns/stmt':>15} {'added ns':>10}")
    for name in mic:
        bare_name = name.replace(" + querywatch", " bare")
        added = "" if name == bare_name else f"{mmed[name] - mmed[bare_name]:+.0f}"
        print(f"{name:38} {mmed[name]:15.0f} {added:>10}")


if __name__ == "__main__":
    main()
