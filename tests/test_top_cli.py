"""`querywatch top` as a user reads it: rates over the time data exists, on a pipe and at 80
columns, through the real CLI on a real SQLite store."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cli_helpers import run_cli
from querywatch.records import CallSite, StatementWindow
from querywatch.store import open_store

BRANCHES = "UPDATE pgbench_branches SET bbalance = bbalance + $1 WHERE bid = $2"
ACCOUNTS = "SELECT abalance FROM pgbench_accounts WHERE aid = $1"


@pytest.fixture
def pgbench_store(tmp_path: Path) -> Path:
    """140 s of a pgbench-like workload ending now: two statements at 200 calls/s."""
    path = tmp_path / "store.sqlite3"
    start = int(time.time() // 10 * 10) - 140
    site = CallSite("app/very/long/path/to/the/module/views.py", 123, "handler")
    windows = []
    for i in range(14):
        at = start + 10 * i
        windows.append(StatementWindow("a1b2c3d4e5f60718", BRANCHES, at, 2000, 7800.0, 40.0,
                                       rows=2000, call_sites=(site,)))  # fmt: skip
        windows.append(StatementWindow("ffeeddccbbaa9988", ACCOUNTS, at, 2000, 100.0, 1.0))
    with open_store(path) as store:
        store.write_windows(windows)
    return path


def test_calls_per_second_divide_by_the_time_data_exists_not_the_range(
    pgbench_store: Path,
) -> None:
    """The pgbench trial: `--since 1h` over 140 s of data showed a 200/s statement as 7.8/s."""
    result = run_cli("top", "--store", str(pgbench_store), "--since", "1h", env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if "a1b2c3d4e5f6" in line]
    assert len(rows) == 1, result.stdout
    assert " 200.0 " in rows[0], rows[0]
    assert "7.8" not in rows[0]
    assert "calls/s over the 140 s the data covers" in result.stdout
    # An --until before the end of the data cuts the span there.
    until = str(time.time() - 70)
    half = run_cli(
        "top", "--store", str(pgbench_store), "--since", "1h", "--until", until,
        env={"COLUMNS": "200"},
    )  # fmt: skip
    row = next(line for line in half.stdout.splitlines() if "a1b2c3d4e5f6" in line)
    rate = float(row.split("│")[3].replace(",", ""))
    assert rate == pytest.approx(200, rel=0.05), row
