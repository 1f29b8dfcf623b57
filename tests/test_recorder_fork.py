"""A recorder created before a fork (gunicorn --preload, Celery's prefork pool) keeps recording in
the child: its own flusher thread and store connection, and nothing written twice."""

from __future__ import annotations

import os
import sqlite3
import warnings
from pathlib import Path

import pytest

import querywatch
from querywatch.capture.recorder import Recorder
from querywatch.sql import fingerprint
from querywatch.store import open_store

PARENT_SQL = "SELECT 1 AS parent"
CHILD_SQL = "SELECT 2 AS child"


def calls(store_path: Path, sql: str) -> int:
    store = open_store(store_path)
    try:
        fp = fingerprint(sql, "sqlite").id
        return sum(w.calls for w in store.statement_windows() if w.fingerprint == fp)
    finally:
        store.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_forked_child_records_through_its_own_flusher_and_store(tmp_path: Path) -> None:
    store_path = tmp_path / "qw.sqlite3"
    recorder = Recorder(str(store_path), flush_interval=60)
    conn = querywatch.instrument(sqlite3.connect(":memory:"), recorder=recorder).target
    for _ in range(3):
        conn.execute(PARENT_SQL)
    assert recorder.flush()  # the parent's store connection is open when it forks
    for _ in range(4):
        conn.execute(PARENT_SQL)  # recorded, not yet written when the child is born

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork of a threaded process
        pid = os.fork()
    if pid == 0:  # the child: record, flush through its own thread, report by exit code
        code = 1
        try:
            for _ in range(7):
                conn.execute(CHILD_SQL)
            alive = recorder._thread.is_alive()
            code = 0 if alive and recorder.flush(10) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0

    recorder.close()
    assert calls(store_path, CHILD_SQL) == 7
    assert calls(store_path, PARENT_SQL) == 3 + 4  # the child did not write the parent's again
