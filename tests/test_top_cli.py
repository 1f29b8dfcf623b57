"""`querywatch top` as a user reads it: rates over the time data exists, on a pipe and at 80
columns, through the real CLI on a real SQLite store."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

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


def top(store: Path, *args: str, columns: int | None) -> subprocess.CompletedProcess[str]:
    """`querywatch top` with its output captured (a pipe), at ``columns`` or Rich's default."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUERYWATCH_")}
    env.pop("COLUMNS", None)
    env.pop("LINES", None)
    if columns is not None:
        env["COLUMNS"] = str(columns)
    return subprocess.run(
        [sys.executable, "-m", "querywatch", "top", "--store", str(store), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def figures(line: str) -> list[str]:
    """The numbers of one table row, in order (1,234.5 / 200.0 / 0.05)."""
    return re.findall(r"(?<![\w.])\d[\d,]*\.\d+(?![\w.])", line)


def test_calls_per_second_divide_by_the_time_data_exists_not_the_range(
    pgbench_store: Path,
) -> None:
    """The pgbench trial: `--since 1h` over 140 s of data showed a 200/s statement as 7.8/s."""
    result = top(pgbench_store, "--since", "1h", columns=200)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if "a1b2c3d4e5f6" in line]
    assert len(rows) == 1, result.stdout
    assert figures(rows[0]) == ["109,200.0", "200.0", "3.90"], rows[0]
    assert "calls/s over the 140 s the data covers" in result.stdout
    # An --until before the end of the data cuts the span there.
    half = top(pgbench_store, "--since", "1h", "--until", str(time.time() - 70), columns=200)
    row = next(line for line in half.stdout.splitlines() if "a1b2c3d4e5f6" in line)
    assert float(figures(row)[1]) == pytest.approx(200, rel=0.05), row


@pytest.mark.parametrize("columns", [80, None, 100, 60])
def test_every_figure_shows_on_a_pipe_and_at_80_columns(
    pgbench_store: Path, columns: int | None
) -> None:
    """On a pipe (Rich's default of 80 columns) and on narrow terminals the numeric columns
    collapsed to nothing: only the query and call site were left."""
    result = top(pgbench_store, "--since", "1h", columns=columns)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= (columns or 80), result.stdout
    header = next(line for line in lines if "total ms" in line)
    assert header.split()[:5] == ["total", "ms", "calls/s", "mean", "ms"], header
    branches = next(i for i, line in enumerate(lines) if "UPDATE pgbench" in line)
    assert figures(lines[branches]) == ["109,200.0", "200.0", "3.90"], result.stdout
    accounts = next(line for line in lines if "SELECT abalance" in line)
    assert figures(accounts) == ["1,400.0", "200.0", "0.05"], result.stdout
    # The fingerprint and the call site go on the line under the query.
    under = lines[branches + 1]
    assert "a1b2c3d4e5f6  app/" in under, result.stdout
    if (columns or 80) >= 80:
        assert "UPDATE pgbench_branches SET bbalance" in lines[branches]
        assert "a1b2c3d4e5f6  app/very/long/path" in under


def test_a_wide_terminal_keeps_fingerprint_and_call_site_columns(pgbench_store: Path) -> None:
    result = top(pgbench_store, "--since", "1h", columns=200)
    row = next(line for line in result.stdout.splitlines() if "UPDATE pgbench_branches" in line)
    assert row.startswith("a1b2c3d4e5f6 ")
    assert row.rstrip().endswith("views.…") or "views.py:123" in row, row
    assert "bbalance + $1 WHERE bid = $2" in row


def test_release_filters_the_ranking(tmp_path: Path) -> None:
    """`top --release` ranks one release's calls; without it every release's are summed."""
    path = tmp_path / "store.sqlite3"
    at = int(time.time() // 10 * 10) - 30
    with open_store(path) as store:
        store.write_windows(
            [
                StatementWindow("a1b2c3d4e5f60718", BRANCHES, at, 90, 90.0, 1.0, release="v1"),
                StatementWindow("a1b2c3d4e5f60718", BRANCHES, at, 10, 2000.0, 200.0, release="v2"),
                StatementWindow("ffeeddccbbaa9988", ACCOUNTS, at, 50, 50.0, 1.0, release="v1"),
            ]
        )
    canary = top(path, "--release", "v2", "--json", columns=200)
    assert canary.returncode == 0, canary.stderr
    rows = json.loads(canary.stdout)["data"]
    assert [(r["fingerprint"], r["calls"], r["release"]) for r in rows] == [
        ("a1b2c3d4e5f60718", 10, "v2")
    ]
    both = json.loads(top(path, "--json", columns=200).stdout)["data"]
    assert [(r["calls"], r["release"]) for r in both] == [(100, ""), (50, "v1")]
    table = top(path, "--release", "v2", columns=200)
    assert "top of release v2 by total" in table.stdout
    assert "ffeeddccbbaa" not in table.stdout
    none = top(path, "--release", "v9", columns=200)
    assert none.returncode == 0
    assert "no statements of release 'v9' recorded in that range" in none.stdout
