"""Real PostgreSQL logs for the digest tests: a cluster that logs, a workload with known counts.

``logged_cluster`` starts the suite's throwaway cluster with the logging collector writing stderr,
csvlog and jsonlog files into a directory the test owns; ``run_workload`` runs statements whose
counts per fingerprint are known (plain and multi-line statements, bind parameters, a lock wait, a
temporary file, errors) and returns those counts, so a test can digest the files and compare.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from pg_cluster import running_cluster

DURATION_STYLE = {  # log_min_duration_statement = 0: one line per statement with its duration
    "log_min_duration_statement": "0",
}
STATEMENT_STYLE = {  # log_statement = all + log_duration: the statement, then its duration
    "log_statement": "'all'",
    "log_duration": "on",
    "log_line_prefix": "'%t [%p]: user=%u,db=%d,app=%a,client=%h '",
    "shared_preload_libraries": "'pg_stat_statements,auto_explain'",
    "auto_explain.log_min_duration": "'50ms'",
}

LOOKUP = "SELECT id, name, price FROM items WHERE id = %s"
INSERT = "INSERT INTO items (name, price) VALUES (%s, %s)"
MULTILINE = "SELECT id,\n       name\n  FROM items\n WHERE price > 10\n ORDER BY id\n LIMIT 3"
LOCKED = "UPDATE items SET price = price + 1 WHERE id = 1"
SORTED = "SELECT g FROM generate_series(1, 300000) AS g ORDER BY g DESC LIMIT 1"
SLOW = "SELECT pg_sleep(0.06), 'slow' AS label"
MISSING = "SELECT * FROM no_such_table WHERE id = 1"
DONE = "SELECT 'workload done' AS marker"


@dataclass
class Workload:
    """What the workload ran: statement text (as the client wrote it) to times it completed."""

    calls: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    lock_waits: int = 0
    temp_files: int = 0

    def ran(self, sql: str, times: int = 1) -> None:
        self.calls[sql] = self.calls.get(sql, 0) + times


@contextlib.contextmanager
def logged_cluster(logdir: Path, settings: dict[str, str]) -> Iterator[str]:
    """A cluster whose logging collector writes ``logdir/pg.log``, ``.csv`` and ``.json``."""
    logdir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(logdir, entry.pw_uid, entry.pw_gid)
    conf = {
        "logging_collector": "on",
        "log_destination": "'stderr,csvlog,jsonlog'",
        "log_directory": f"'{logdir}'",
        "log_filename": "'pg.log'",
        "log_file_mode": "0644",
        "log_rotation_size": "0",
        "log_rotation_age": "0",
        "log_lock_waits": "on",
        "deadlock_timeout": "'100ms'",
        "log_temp_files": "0",
        "lc_messages": "'C'",
        **settings,
    }
    with running_cluster(conf) as dsn:
        yield dsn


def run_workload(dsn: str) -> Workload:
    """Run the workload on a fresh table in ``dsn``'s database; returns what ran."""
    done = Workload()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS items")
        conn.execute(
            "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL, price numeric)"
        )
        for i in range(20):  # bind parameters: the extended protocol, DETAIL: parameters
            conn.execute(INSERT, (f"item {i}\nwith a newline", i * 3))
        done.ran(INSERT, 20)
        for i in range(50):
            conn.execute(LOOKUP, (i % 25 + 1,))
        done.ran(LOOKUP, 50)
        for _ in range(7):  # no parameters: the simple protocol, continuation lines
            conn.execute(MULTILINE)
        done.ran(MULTILINE, 7)
        conn.execute("SET work_mem = '64kB'")  # a sort that spills to a temporary file
        conn.execute(SORTED)
        conn.execute("RESET work_mem")
        done.ran(SORTED)
        done.temp_files = 1
        conn.execute(SLOW)  # slower than auto_explain's threshold: a plan in that style
        done.ran(SLOW)
        for _ in range(3):
            with contextlib.suppress(psycopg.errors.UndefinedTable):
                conn.execute(MISSING)
        done.errors[MISSING] = 3
        _lock_wait(dsn)
        done.ran(LOCKED, 2)
        done.lock_waits = 1
    _wait_for_marker(dsn)
    return done


def _lock_wait(dsn: str) -> None:
    """One UPDATE waits for another's row lock longer than deadlock_timeout, then runs."""
    holder = psycopg.connect(dsn)
    try:
        holder.execute(LOCKED)  # opens a transaction holding the row lock
        waiter = threading.Thread(target=_update, args=(dsn,))
        waiter.start()
        time.sleep(0.5)
        holder.commit()
        waiter.join(10)
    finally:
        holder.close()


def _update(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(LOCKED)


def _wait_for_marker(dsn: str) -> None:
    """Log a last statement and wait until the collector wrote it to every file."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(DONE)
        row = conn.execute("SELECT current_setting('log_directory')").fetchone()
    assert row is not None
    logdir = Path(row[0])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        texts = [p.read_bytes() for p in (logdir / n for n in ("pg.log", "pg.csv", "pg.json"))]
        if all(b"workload done" in t for t in texts):
            return
        time.sleep(0.05)
    raise AssertionError(f"the workload's last statement never reached the logs in {logdir}")


def workload_logs(dest: Path, settings: dict[str, str]) -> Workload:
    """Run the workload on a fresh logged cluster; its stderr, csv and json logs are copied to
    ``dest`` (pg.log, pg.csv, pg.json), readable after the cluster is gone."""
    # The server runs as the postgres OS user under root: its log directory must be reachable
    # for it, which pytest's private temporary directories are not.
    server = Path(tempfile.mkdtemp(prefix="querywatch-pglogs-"))
    try:
        server.chmod(0o755)
        with logged_cluster(server / "logs", settings) as dsn:
            done = run_workload(dsn)
        for name in ("pg.log", "pg.csv", "pg.json"):
            (dest / name).write_bytes((server / "logs" / name).read_bytes())
    finally:
        shutil.rmtree(server, ignore_errors=True)
    return done


_SHARED: dict[str, tuple[Path, Workload]] = {}


def shared_logs(style: str) -> tuple[Path, Workload]:
    """The workload's logs in ``style`` ("duration" or "statement"), made once per test run and
    shared by the test modules (read them, never change them)."""
    if style not in _SHARED:
        root = Path(tempfile.mkdtemp(prefix=f"querywatch-logs-{style}-"))
        atexit.register(shutil.rmtree, root, True)
        settings = DURATION_STYLE if style == "duration" else STATEMENT_STYLE
        _SHARED[style] = (root, workload_logs(root, settings))
    return _SHARED[style]
