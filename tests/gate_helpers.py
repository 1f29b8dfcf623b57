"""Recording one test's statements the way `pytest --querywatch` does, for the gate's tests."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from querywatch.gate import Collector, GateRun
from querywatch.gate.connections import patch


def record_test(db: Path, body: Callable[[sqlite3.Connection], object], test_id: str) -> GateRun:
    """Run ``body(conn)`` as test ``test_id``, on a connection opened through the patched
    ``sqlite3.connect``, and return what the collector recorded."""
    collector = Collector()
    undo = patch(collector)
    try:
        conn = sqlite3.connect(db)
        with collector.test(test_id):
            body(conn)
        conn.close()
    finally:
        undo()
    return collector.close()


# -- a project in a temp dir, under a real pytest subprocess ------------------------------------


def write_project(root: Path, app: str, tests: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "app.py").write_text(textwrap.dedent(app).lstrip())
    (root / "test_app.py").write_text(textwrap.dedent(tests).lstrip())
    return root


def pytest_in(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # -p no:querywatch: the installed entry point must not load the same module a second time;
    # -p no:querywatch_django: these projects are not Django ones (and it names the distribution).
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("QUERYWATCH_", "PYTEST_")) and k != "COLUMNS"
    }
    env["COLUMNS"] = "160"
    return subprocess.run(
        [
            sys.executable, "-m", "pytest", "-p", "no:querywatch", "-p", "no:querywatch_django",
            "-p", "querywatch.gate.pytest_plugin", "-p", "no:cacheprovider",
            f"--basetemp={root / '.tmp'}", *args,
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )  # fmt: skip


# -- application code ---------------------------------------------------------------------------
# The gate tells the application from the tests by file name (test_*.py, conftest.py are tests),
# so the shapes an application has live here, outside any test file.


def home_page(conn: sqlite3.Connection, customers: int) -> list[int]:
    """The N+1 shape: one orders query per customer, in one call of the application."""
    out = []
    for cid in range(customers):
        out.append(
            len(conn.execute("SELECT id FROM orders WHERE customer_id = ?", (cid,)).fetchall())
        )
    return out


def query_per_row(conn: sqlite3.Connection, sql: str, rows: int) -> None:
    """Run ``sql`` once per row, ``rows`` times: N+1 when ``sql`` reads."""
    for i in range(rows):
        conn.execute(sql, (i,)).fetchall()


def save(conn: sqlite3.Connection, sql: str, *params: object) -> None:
    """One application call that runs one statement (a test looping over it builds data)."""
    conn.execute(sql, params).fetchall()


def issue(collector: Collector, sql: str, dialect: str, times: int) -> None:
    """Application code on a connection the gate records without a database to EXPLAIN on."""
    for _ in range(times):
        collector.record(sql, dialect)


def batched_import(conn: sqlite3.Connection, batches: int) -> None:
    """Application code writing rows in batches: one multi-row INSERT per batch."""
    for b in range(batches):
        conn.execute(
            "INSERT INTO orders (customer_id) VALUES (?), (?), (?), (?)", (b, b, b, b)
        ).fetchall()
