"""Recording one test's statements the way `pytest --querywatch` does, for the gate's tests."""

from __future__ import annotations

import sqlite3
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
