"""`querywatch watch` end to end: a real PostgreSQL, the real CLI, a real store."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

import psycopg
import pytest

from cli_helpers import assert_one_line_error, run_cli
from pg_cluster import data_directory, free_port, pg_ctl, running_cluster
from querywatch.capture.pg_stat_statements import PgStatStatementsSource
from querywatch.sql import fingerprint
from querywatch.store import open_store
from querywatch.watch import Agent, AgentEvent

LOOKUP = "SELECT id, total FROM orders WHERE customer_id = {}"


def make_orders(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id serial PRIMARY KEY, customer_id int, total numeric)")
        conn.execute(
            "INSERT INTO orders (customer_id, total) "
            "SELECT g % 100, g FROM generate_series(1, 2000) g"
        )


def run_lookups(dsn: str, n: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i in range(n):
            conn.execute(LOOKUP.format(i))  # type: ignore[arg-type]


class _Lines:
    """Lines a child process writes to one pipe, read on a thread (so the pipe never fills)."""

    def __init__(self, pipe: IO[str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe: IO[str]) -> None:
        for line in pipe:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        pipe.close()

    def wait_for(self, test: Callable[[list[str]], bool], timeout: float = 60) -> bool:
        """Wait until ``test(lines)`` holds; False if it still does not after ``timeout`` s."""
        with self._changed:
            return self._changed.wait_for(lambda: test(self.lines), timeout)

    def text(self) -> str:
        self._thread.join(timeout=10)
        return "".join(self.lines)


def _calls_seen(lines: list[str], fingerprint_id: str) -> int:
    """Calls of one fingerprint in `watch --no-live` poll lines (``<time> <fp12> calls=N …``)."""
    total = 0
    for line in lines:
        parts = line.split()
        if len(parts) > 2 and parts[1] == fingerprint_id[:12] and parts[2].startswith("calls="):
            total += int(parts[2].removeprefix("calls="))
    return total


def test_watch_then_top_shows_the_workload_with_exact_counts(pg_dsn: str, tmp_path: Path) -> None:
    make_orders(pg_dsn)
    # Late in the suite pg_stat_statements is full of other tests' entries, and a new one may
    # be evicted before its first read: start from an empty view, as a fresh server has.
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")
    store = tmp_path / "store.sqlite3"
    expected = fingerprint(LOOKUP.format(7))
    watch = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "querywatch",
            "watch",
            "--dsn",
            pg_dsn,
            "--store",
            str(store),
            "--interval",
            "0.5",
            "--duration",
            "300",  # a safety net: the test stops it as soon as it has seen what it needs
            "--no-live",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert watch.stdout is not None and watch.stderr is not None
    out, err = _Lines(watch.stdout), _Lines(watch.stderr)
    try:
        # "watching …" is printed after the first poll, which only sets the baseline.
        assert err.wait_for(lambda lines: any("watching" in ln for ln in lines)), err.lines
        run_lookups(pg_dsn, 25)
        assert out.wait_for(lambda lines: _calls_seen(lines, expected.id) >= 25), out.lines
        # Two more polls after that (each prints at least one line): nothing counted twice.
        seen = len(out.lines)
        assert out.wait_for(lambda lines: len(lines) >= seen + 2), out.lines
    finally:
        watch.send_signal(signal.SIGINT)
        watch.wait(timeout=60)
    assert watch.returncode == 0, err.text()
    assert _calls_seen(out.lines, expected.id) == 25

    result = run_cli("top", "--store", str(store), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)["data"]
    rows = {row["fingerprint"]: row for row in data}
    assert expected.id in rows, rows
    row = rows[expected.id]
    assert row["calls"] == 25
    assert row["total_ms"] > 0 and row["mean_ms"] == pytest.approx(row["total_ms"] / 25, abs=1e-3)
    assert row["normalized"] == expected.normalized
    assert not any("querywatch" in r["normalized"] for r in rows.values()), "own queries leaked"


def test_watch_survives_the_database_going_away(tmp_path: Path) -> None:
    """Blind while the server is down, then resumes, and nothing stored is lost."""
    with running_cluster() as admin:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        make_orders(admin)
        events: list[AgentEvent] = []
        store = open_store(tmp_path / "store.sqlite3")
        source = PgStatStatementsSource(admin)
        agent = Agent(source, store, state_key="pgss:test", interval=0.1, on_event=events.append)
        agent.poll_once(strict=True)  # baseline
        run_lookups(admin, 10)
        agent.poll_once()
        data = data_directory(admin)
        pg_ctl(data, "stop")
        agent.poll_once()
        agent.poll_once()
        assert [e.kind for e in events[-2:]] == ["blind", "blind"]
        assert "monitoring is blind" in events[-1].message
        pg_ctl(data, "start")
        run_lookups(admin, 4)
        agent.poll_once()
        assert "recovered" in [e.kind for e in events[-2:]]
        source.close()
        calls = {r.fingerprint: r.calls for r in store.top(limit=50)}
        store.close()
    assert calls[fingerprint(LOOKUP.format(1)).id] == 14
    assert agent.stats.failed_polls == 2


def test_watch_resumes_after_an_agent_restart_without_double_counting(
    pg_dsn: str, tmp_path: Path
) -> None:
    make_orders(pg_dsn)
    path = tmp_path / "store.sqlite3"
    for batch in (6, 9):
        store = open_store(path)
        source = PgStatStatementsSource(pg_dsn)
        agent = Agent(source, store, state_key="pgss:restart")
        if batch == 6:
            agent.poll_once(strict=True)  # the very first start: baseline only
        run_lookups(pg_dsn, batch)
        agent.poll_once(strict=True)
        source.close()
        store.close()
    store = open_store(path)
    calls = {r.fingerprint: r.calls for r in store.top(limit=50)}
    store.close()
    assert calls[fingerprint(LOOKUP.format(3)).id] == 15


def watch_once(dsn: str, store: str) -> subprocess.CompletedProcess[str]:
    return run_cli("watch", "--dsn", dsn, "--store", store, "--duration", "1", "--no-live")


def test_watch_with_a_wrong_dsn_says_so_in_one_line(tmp_path: Path) -> None:
    dsn = f"postgresql://app:s3cret@127.0.0.1:{free_port()}/shop"
    result = watch_once(dsn, str(tmp_path / "s.sqlite3"))
    line = assert_one_line_error(result, "cannot connect")
    assert "s3cret" not in result.stderr + result.stdout and "***" in line


def test_watch_without_the_extension_names_the_fix(pg_server: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS qw_noext")
        conn.execute("CREATE DATABASE qw_noext")
    dsn = pg_server.rsplit("/", 1)[0] + "/qw_noext"
    result = watch_once(dsn, str(tmp_path / "s.sqlite3"))
    assert_one_line_error(result, "CREATE EXTENSION pg_stat_statements")


def test_watch_with_an_unwritable_store_says_so_in_one_line(pg_dsn: str, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = watch_once(pg_dsn, str(blocker / "store.sqlite3"))
    assert_one_line_error(result, "store")


def test_watch_without_a_dsn_says_how_to_give_one(tmp_path: Path) -> None:
    assert_one_line_error(
        run_cli("watch", "--duration", "1", cwd=tmp_path), "--dsn", "QUERYWATCH_DSN"
    )


def test_top_json_lists_objects_sorted_by_the_requested_key(pg_dsn: str, tmp_path: Path) -> None:
    make_orders(pg_dsn)
    store_path = tmp_path / "s.sqlite3"
    store = open_store(store_path)
    source = PgStatStatementsSource(pg_dsn)
    agent = Agent(source, store, state_key="pgss:top")
    agent.poll_once(strict=True)
    run_lookups(pg_dsn, 30)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        for _ in range(3):
            conn.execute("SELECT count(*) FROM orders o1 JOIN orders o2 USING (customer_id)")
    agent.poll_once(strict=True)
    source.close()
    store.close()
    by_calls = json.loads(
        run_cli("top", "--store", str(store_path), "--json", "--sort", "calls").stdout
    )["data"]
    by_mean = json.loads(
        run_cli("top", "--store", str(store_path), "--json", "--sort", "mean").stdout
    )["data"]
    assert by_calls[0]["normalized"].startswith("select id, total from orders")
    assert "join" in by_mean[0]["normalized"]
    for row in by_calls:
        assert {"fingerprint", "normalized", "calls", "total_ms", "mean_ms"} <= set(row)
    assert [r["calls"] for r in by_calls] == sorted((r["calls"] for r in by_calls), reverse=True)


def test_top_with_a_bad_since_says_which_forms_work(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.sqlite3")
    store.close()
    result = run_cli("top", "--store", str(tmp_path / "s.sqlite3"), "--since", "yesterday-ish")
    assert_one_line_error(result, "--since", "10m")
