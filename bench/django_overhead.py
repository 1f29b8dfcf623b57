"""Capture overhead through Django's hook, beside the raw psycopg path and OpenTelemetry's.

What a Django request pays for having its statements recorded. Five configurations run
interleaved (A, B, C, …, A, B, C, …) on connections of their own to one loopback PostgreSQL:

- ``raw psycopg`` and ``raw psycopg + querywatch``: a psycopg connection, bare and through
  ``querywatch.instrument`` (the raw path), each point query executed and fetched;
- ``Django`` and ``Django + querywatch``: the same query through Django's cursor (a
  ``connections[alias].cursor()``), bare and with the app's execute wrapper
  (``querywatch.contrib.django``), plus, per request, the app's middleware;
- ``Django + OpenTelemetry``: OpenTelemetry's Django instrumentation (its middleware, request
  spans) with its psycopg instrumentation for the statement spans, SDK with a batch processor and
  an in-memory exporter.

Two figures: µs per statement (a loop of point queries on the cursor) and µs per request (a view
running ``--per-request`` point queries, called through each configuration's middleware with a
request from Django's RequestFactory). Wall time and this thread's CPU time are printed (median
over ``--rounds`` rounds), and what each configuration adds over its bare one, paired per round;
on a busy machine the CPU figures are the ones to read (the wall figures carry the wait on the
server).

    .venv/bin/python bench/django_overhead.py [--dsn postgresql://...] [--rounds 9] [-n 10000]

Without ``--dsn`` a throwaway cluster is started with tests/pg_cluster.py.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from capture_overhead import postgres, prepare  # the same throwaway cluster and table

POINT = "SELECT name FROM qw_bench_items WHERE id = %s"
ALIASES = ("plain", "qw", "otel")


def configure_django(dsn: str) -> None:
    import django
    from django.conf import settings

    parts = urlsplit(dsn)
    database = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parts.path.lstrip("/"),
        "USER": parts.username or "",
        "PASSWORD": parts.password or "",
        "HOST": parts.hostname or "",
        "PORT": parts.port or "",
        "CONN_MAX_AGE": None,
    }
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench",
        ALLOWED_HOSTS=["testserver"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
        DATABASES={"default": database, **{alias: dict(database) for alias in ALIASES}},
        USE_TZ=True,
    )
    django.setup()


urlpatterns: list[Any] = []  # ROOT_URLCONF: the views are called directly, by configuration


Timing = tuple[float, float]
"""(wall µs, this thread's CPU µs) per unit: the CPU time leaves out the wait on the server, so it
shows what the instrumentation costs the application with far less noise on a busy machine."""


def statement_loop(execute: Callable[..., Any], fetchone: Callable[[], Any], n: int) -> Timing:
    t0, c0 = time.perf_counter(), time.thread_time()
    for i in range(n):
        execute(POINT, (i % 1000,))
        fetchone()
    return (time.perf_counter() - t0) / n * 1e6, (time.thread_time() - c0) / n * 1e6


def make_view(alias: str, per_request: int) -> Callable[[Any], Any]:
    from django.db import connections
    from django.http import HttpResponse

    def view(request: Any) -> Any:
        with connections[alias].cursor() as cursor:
            for i in range(per_request):
                cursor.execute(POINT, (i,))
                cursor.fetchone()
        return HttpResponse(b"ok")

    return view


def request_loop(handler: Callable[[Any], Any], requests: int) -> Timing:
    from django.test import RequestFactory
    from django.urls import ResolverMatch

    factory = RequestFactory()
    t0, c0 = time.perf_counter(), time.thread_time()
    for _ in range(requests):
        request = factory.get("/items/")
        request.resolver_match = ResolverMatch(handler, (), {}, url_name="items")
        handler(request)
    return (time.perf_counter() - t0) / requests * 1e6, (time.thread_time() - c0) / requests * 1e6


def setup(dsn: str, per_request: int) -> tuple[dict[str, Any], Callable[[], None], Any]:
    """Connections, statement loops and request handlers per configuration."""
    from django.db import connections

    from querywatch import instrument
    from querywatch.contrib.django import capture
    from querywatch.contrib.django.conf import read_settings
    from querywatch.contrib.django.middleware import QueryWatchMiddleware

    raw = psycopg.connect(dsn, autocommit=True)
    raw_qw = psycopg.connect(dsn, autocommit=True)
    for alias in ("plain", "qw"):
        connections[alias].ensure_connection()
    # The app: its recorder, and its wrapper on the "qw" connection only (not via ready()).
    running = capture.DjangoCapture(read_settings({"store": ":memory:"}, environ={}))
    capture._current = running
    running.hook.attach(connections["qw"])
    inst = instrument(raw_qw, recorder=running.recorder)

    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.django.middleware.otel_middleware import _DjangoMiddleware
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    DjangoInstrumentor().instrument(tracer_provider=provider)
    PsycopgInstrumentor().instrument(tracer_provider=provider)
    connections["otel"].ensure_connection()  # opened through the instrumented psycopg.connect

    def reset() -> None:
        provider.force_flush()
        exporter.clear()

    cursors = {alias: connections[alias].cursor() for alias in ALIASES}
    raw_cur, raw_qw_cur = raw.cursor(), raw_qw.cursor()
    statements = {
        "raw psycopg": (raw_cur.execute, raw_cur.fetchone),
        "raw psycopg + querywatch": (raw_qw_cur.execute, raw_qw_cur.fetchone),
        "Django": (cursors["plain"].execute, cursors["plain"].fetchone),
        "Django + querywatch": (cursors["qw"].execute, cursors["qw"].fetchone),
        "Django + OpenTelemetry": (cursors["otel"].execute, cursors["otel"].fetchone),
    }
    handlers = {
        "Django": make_view("plain", per_request),
        "Django + querywatch": QueryWatchMiddleware(make_view("qw", per_request)),
        "Django + OpenTelemetry": _DjangoMiddleware(make_view("otel", per_request)),
    }
    return {"statements": statements, "requests": handlers}, reset, (running, inst)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", help="a PostgreSQL to run against (default: a throwaway one)")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("-n", type=int, default=10_000, help="statements per config per round")
    parser.add_argument("--requests", type=int, default=1_000, help="requests per round")
    parser.add_argument("--per-request", type=int, default=10, help="statements per request")
    args = parser.parse_args()
    with postgres(args.dsn) as dsn:
        prepare(dsn)
        configure_django(dsn)
        configs, reset, (running, _inst) = setup(dsn, args.per_request)
        per_stmt: dict[str, list[Timing]] = {name: [] for name in configs["statements"]}
        per_req: dict[str, list[Timing]] = {name: [] for name in configs["requests"]}
        for execute, fetchone in configs["statements"].values():  # warm up
            statement_loop(execute, fetchone, 2000)
        for handler in configs["requests"].values():
            request_loop(handler, 200)
        for r in range(args.rounds):
            for name, (execute, fetchone) in configs["statements"].items():
                gc.collect()
                per_stmt[name].append(statement_loop(execute, fetchone, args.n))
                reset()
            for name, handler in configs["requests"].items():
                gc.collect()
                per_req[name].append(request_loop(handler, args.requests))
                reset()
            print(f"  round {r + 1}/{args.rounds} done", flush=True)
        running.flush()
        recorded = running.recorder.aggregator.internal_errors
        report(per_stmt, per_req, args)
        print(f"\nquerywatch internal errors: {recorded}")
        running.close()


def _table(title: str, runs: dict[str, list[Timing]], base: dict[str, str]) -> dict[str, float]:
    """Print wall and CPU medians and what each configuration adds over its bare one (paired
    per round: the difference within a round, whose noise both sides share); CPU added back."""
    print(f"\n{title}")
    print(
        f"{'configuration':28} {'wall µs':>9} {'added':>8} {'CPU µs':>9} {'added':>8}"
        f" {'wall min–max':>16}"
    )
    added_cpu: dict[str, float] = {}
    for name, values in runs.items():
        wall = statistics.median(v[0] for v in values)
        cpu = statistics.median(v[1] for v in values)
        walls = [v[0] for v in values]
        if name in base:
            ref = runs[base[name]]
            dw = statistics.median(v[0] - r[0] for v, r in zip(values, ref, strict=True))
            dc = statistics.median(v[1] - r[1] for v, r in zip(values, ref, strict=True))
            added_cpu[name] = dc
            aw, ac = f"{dw:+8.2f}", f"{dc:+8.2f}"
        else:
            aw = ac = " " * 8
        span = f"{min(walls):.0f}–{max(walls):.0f}"
        print(f"{name:28} {wall:9.2f} {aw} {cpu:9.2f} {ac} {span:>16}")
    return added_cpu


def report(per_stmt: dict[str, list[Timing]], per_req: dict[str, list[Timing]], args: Any) -> None:
    base = {"raw psycopg + querywatch": "raw psycopg"}
    base |= {k: "Django" for k in per_stmt if k.startswith("Django +")}
    s = _table(
        f"per statement (point SELECT + fetchone, {args.rounds} rounds × {args.n}):",
        per_stmt,
        base,
    )
    r = _table(
        f"per request ({args.per_request} statements, through the configuration's middleware,"
        f" {args.rounds} rounds × {args.requests}):",
        per_req,
        {k: "Django" for k in per_req if k != "Django"},
    )
    ours, otel = s["Django + querywatch"], s["Django + OpenTelemetry"]
    print(
        f"\nCPU added per statement: querywatch {ours:.2f} µs through Django's hook"
        f" ({s['raw psycopg + querywatch']:.2f} µs on the raw psycopg path), OpenTelemetry"
        f" {otel:.2f} µs" + (f" ({otel / ours:.0f}x ours)" if ours > 0 else "")
    )
    rq, ro = r["Django + querywatch"], r["Django + OpenTelemetry"]
    print(
        f"CPU added per request of {args.per_request} statements: querywatch {rq:.1f} µs,"
        f" OpenTelemetry {ro:.1f} µs" + (f" ({ro / rq:.0f}x ours)" if rq > 0 else "")
    )


if __name__ == "__main__":
    main()
