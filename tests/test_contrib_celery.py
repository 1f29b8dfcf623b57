"""querywatch.contrib.celery: the example shop's tasks (examples/flask/flask_tasks.py) run by a
real Celery worker in this process (in-memory broker), against the test PostgreSQL, checked in
a real store. Each task run is a request to the route ``task:<name>``."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker

import querywatch
from contrib_helpers import assert_n_plus_one, by_route, sites_of, sqlalchemy_url, use_example
from querywatch.capture.jobs import JobTracker
from querywatch.capture.recorder import MemorySink, Recorder
from querywatch.sql import fingerprint
from querywatch.store import open_store

use_example("flask")
import flask_shop  # noqa: E402
import flask_tasks  # noqa: E402

TASKS = Path(flask_tasks.__file__).resolve()
CUSTOMERS = 8
BROKER = {
    "broker_url": "memory://",
    "result_backend": "cache+memory://",
    "broker_transport_options": {"polling_interval": 0.05},
}


@pytest.fixture
def worker(pg_dsn: str, tmp_path: Path) -> Iterator[tuple[Any, Path]]:
    """The shop's Flask app and Celery app on the test database, a worker running its tasks."""
    store = tmp_path / "qw.sqlite3"
    app = flask_shop.create_app(sqlalchemy_url(pg_dsn), QUERYWATCH_STORE=str(store), CELERY=BROKER)
    with app.app_context():
        flask_shop.seed(customers=CUSTOMERS, orders=3 * CUSTOMERS)
    celery_app = flask_tasks.celery_init_app(app)
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        yield app, store
    app.extensions["querywatch.celery"].close()
    app.extensions["querywatch"].close()
    with app.app_context():
        flask_shop.db.engine.dispose()


@pytest.mark.postgres
def test_each_task_run_is_a_route_with_its_n_plus_one_slow_statement_and_failure(
    worker: Any,
) -> None:
    """One worker for the three cases: stopping Celery's in-memory worker takes seconds."""
    app, store_path = worker
    for _ in range(3):
        report = flask_tasks.customer_report.delay().get(timeout=60, interval=0.05)
        assert len(report) == CUSTOMERS
    assert flask_tasks.slow_total.delay(0.3).get(timeout=60, interval=0.05) > 0
    result = flask_tasks.broken_export.delay()
    with pytest.raises(RuntimeError, match="export target unreachable"):
        result.get(timeout=60, interval=0.05)
    assert app.extensions["querywatch"].flush()

    store = open_store(store_path)
    runs = by_route(store)
    assert set(runs) == {
        "task:shop.customer_report",
        "task:shop.slow_total",
        "task:shop.broken_export",
    }
    windows = store.statement_windows()

    # The N+1: repeated on the task's route, its call site the task's loop.
    report_runs = runs["task:shop.customer_report"]
    assert (report_runs.requests, report_runs.errors) == (3, 0)
    assert report_runs.db_calls == 3 * (1 + CUSTOMERS)
    assert_n_plus_one(
        store,
        route="task:shop.customer_report",
        requests=3,
        repeats=CUSTOMERS,
        at=(TASKS, "# N+1: one SELECT per customer", "customer_report"),
    )

    # The slow statement: its time is the task's database time, its call site the task.
    slow = runs["task:shop.slow_total"]
    assert (slow.requests, slow.errors, slow.db_calls) == (1, 0, 2)
    assert slow.db_ms >= 300  # pg_sleep(0.3) ran inside the task
    sleep = fingerprint("SELECT pg_sleep(%(pause)s)", "postgres").id
    assert max(w.max_ms for w in windows if w.fingerprint == sleep) >= 300
    assert {(path, fn) for path, _, fn in sites_of(windows, sleep)} == {(TASKS, "slow_total")}

    # The failure: an error of its task, with the statement it ran first.
    broken = runs["task:shop.broken_export"]
    assert (broken.requests, broken.errors, broken.db_calls) == (1, 1, 1)
    store.close()


def test_any_job_runner_records_jobs_as_routes() -> None:
    """Without Celery: JobTracker.track around a job (a cron script, an RQ job)."""
    recorder = Recorder(MemorySink(), repeat_threshold=3)
    db = querywatch.instrument(sqlite3.connect(":memory:"), recorder=recorder).target
    db.execute("CREATE TABLE item (id INTEGER PRIMARY KEY)")
    tracker = JobTracker(recorder)
    with tracker.track("job:nightly-report"):
        for i in range(4):
            db.execute("SELECT id FROM item WHERE id = ?", (i,))
    with pytest.raises(ZeroDivisionError), tracker.track("job:nightly-report"):
        db.execute("SELECT count(*) FROM item")
        _ = 1 / 0
    recorder.flush()
    sink = recorder.sink
    assert isinstance(sink, MemorySink)
    (window,) = sink.requests
    assert (window.route, window.requests, window.errors, window.db_calls) == (
        "job:nightly-report",
        2,
        1,
        5,
    )
    (repeat,) = sink.repeats
    assert (repeat.route, repeat.requests, repeat.max_repeats) == ("job:nightly-report", 1, 4)
    recorder.close()
