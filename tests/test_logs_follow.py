"""`digest --follow`: a log read as it grows, through rotation, into the store like `watch`.

The lines are a real server log (tests/log_workload.py), written into a file the way the
server's collector writes it — appended, then rotated by rename or truncated in place.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from log_workload import shared_logs
from querywatch.logs.reader import Tail
from querywatch.logs.source import LogSource
from querywatch.records import StatementWindow
from querywatch.store import open_store
from querywatch.watch import Agent


@pytest.fixture(scope="module", params=["duration", "statement"])
def log_lines(request: pytest.FixtureRequest) -> tuple[list[bytes], Path]:
    """The stderr log's lines, and the folder with all three of the workload's logs."""
    root, _ = shared_logs(request.param)
    return (root / "pg.log").read_bytes().splitlines(keepends=True), root


def calls_of(windows: list[StatementWindow]) -> Counter[str]:
    out: Counter[str] = Counter()
    for w in windows:
        out[w.normalized] += w.calls
    return out


def expected(lines: list[bytes], tmp_path: Path, name: str = "pg.log") -> Counter[str]:
    """What a plain digest of the same lines counts, per normalized text."""
    from querywatch.logs.report import digest_json
    from querywatch.logs.scan import digest_files, plan_files

    whole = tmp_path / f"whole-{name}"
    whole.write_bytes(b"".join(lines))
    data = digest_json(*digest_files(plan_files([whole])), limit=None)
    return Counter({r["normalized"]: r["calls"] for r in data["fingerprints"] if r["calls"]})


def test_tail_follows_appends_rotation_and_truncation(tmp_path: Path) -> None:
    log = tmp_path / "pg.log"
    log.write_bytes(b"old line\n")
    tail = Tail(log)  # starts at the end: what is there is history
    assert tail.read() == b""
    with log.open("ab") as f:
        f.write(b"one\ntw")
        f.flush()
        assert tail.read() == b"one\n"  # a partial line waits for its end
        f.write(b"o\n")
        f.flush()
        assert tail.read() == b"two\n"
        f.write(b"three\n")  # written to the old file after the rename, before the reopen
        os.rename(log, tmp_path / "pg.log.1")
        f.write(b"four\n")
    log.write_bytes(b"five\n")
    assert tail.read() == b"three\nfour\n"  # the old file to its end first
    assert tail.read() == b"five\n"
    log.write_bytes(b"")  # truncated in place (copytruncate)
    with log.open("ab") as f:
        f.write(b"six\n")
    assert tail.read() == b"six\n"
    saved = (tail.position, tail.identity)
    tail.close()
    with log.open("ab") as f:
        f.write(b"seven\n")
    os.rename(log, tmp_path / "pg.log.2")  # rotated while nobody was reading
    log.write_bytes(b"eight\n")
    resumed = Tail(log, offset=saved[0], identity=saved[1])
    assert resumed.read() == b"seven\n"  # found by its inode beside the new file
    assert resumed.read() == b"eight\n"
    resumed.close()


@pytest.mark.parametrize(
    ("name", "fmt"), [("pg.log", "pg-stderr"), ("pg.csv", "pg-csv"), ("pg.json", "pg-json")]
)
def test_the_source_counts_what_a_digest_counts(
    log_lines: tuple[list[bytes], Path], tmp_path: Path, name: str, fmt: str
) -> None:
    lines = (log_lines[1] / name).read_bytes().splitlines(keepends=True)
    log = tmp_path / name
    log.write_bytes(b"")
    source = LogSource(log, fmt)
    got: list[StatementWindow] = []
    try:
        assert source.poll(time.time()) == []
        third = _message_start(lines, len(lines) // 3)
        with log.open("ab") as f:
            f.write(b"".join(lines[:third]))
        got += source.poll(time.time())
        os.rename(log, tmp_path / (name + ".1"))  # the collector rotates: the rest in a new file
        log.write_bytes(b"".join(lines[third:]))
        got += source.poll(time.time())
        got += source.poll(time.time())
    finally:
        source.close()
    assert calls_of(got) == expected(lines, tmp_path, name)
    assert {w.source for w in got} == {"log"}


def _message_start(lines: list[bytes], at: int) -> int:
    """The first line at or after ``at`` that starts a message (as a real rotation cuts)."""
    for i in range(at, len(lines)):
        line = lines[i]
        if line.startswith(b"{") or b" LOG:  " in line or (line[:4].isdigit() and b",LOG," in line):
            return i
    return at


def test_the_agent_stores_and_resumes_after_a_restart(
    log_lines: tuple[list[bytes], Path], tmp_path: Path
) -> None:
    lines, _ = log_lines
    log = tmp_path / "pg.log"
    log.write_bytes(b"")
    half = len(lines) // 2
    with open_store(tmp_path / "store.sqlite3") as store:
        first = LogSource(log, "pg-stderr")
        agent = Agent(first, store, state_key="log:test")
        agent.poll_once(strict=True)
        with log.open("ab") as f:
            f.write(b"".join(lines[:half]))
        agent.poll_once()
        first.close()
        with log.open("ab") as f:  # written while the agent was down
            f.write(b"".join(lines[half:]))
        second = LogSource(log, "pg-stderr")
        again = Agent(second, store, state_key="log:test")  # restores the offset it stored
        again.poll_once(strict=True)
        second.close()
        stored = calls_of(store.statement_windows(since=0))
    assert +stored == expected(lines, tmp_path)


def test_digest_follow_runs_as_an_agent(
    log_lines: tuple[list[bytes], Path], tmp_path: Path
) -> None:
    lines, _ = log_lines
    log = tmp_path / "pg.log"
    log.write_bytes(lines[0])
    store_path = tmp_path / "store.sqlite3"
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUERYWATCH_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "querywatch",
            "digest",
            str(log),
            "--follow",
            f"--store={store_path}",
            "--interval",
            "0.2",
            "--duration",
            "6",
            "--no-detect",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert proc.stderr is not None
    first = proc.stderr.readline()  # after its first read: from here on, what is written counts
    assert "following" in first and str(log) in first, first
    with log.open("ab") as f:
        f.write(b"".join(lines[1:]))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "statements in" in out and "windows stored" in err
    with open_store(store_path) as store:
        stored = calls_of(store.statement_windows(since=0))
    assert +stored == expected(lines[1:], tmp_path)
