"""The CI gate on the demo's releases: what `pytest --querywatch` would have said about v2.

A real shop's test suite calls its pages; here each release's page functions are called once
each, like a small test suite would, on the seeded shop database, with the gate's collector on
the connection. The check then lints and EXPLAINs every statement against that database (its
realistic size is what makes the CAST query a full scan) and flags N+1 loops. Without a
baseline every finding is new: v1 passes with none, v2 fails naming its queries, their lines in
``releases/v2.py`` and the fix.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from querywatch.capture.callsite import add_application_path
from querywatch.demo.shop.db import Db, connect, explain_target, is_postgres
from querywatch.demo.shop.releases import load_release
from querywatch.demo.shop.seed import Shape
from querywatch.gate import CheckReport, Collector, render, run_check


def check_release(version: str, location: str, shape: Shape, workdir: Path) -> CheckReport:
    """Run release ``version``'s pages under the gate's collector, then the gate's check."""
    release = load_release(version)
    add_application_path(str(release.path.parent))  # call sites point into releases/*.py
    collector = Collector()
    conn = collector.wrap(connect(location))
    db = Db(conn, postgres=is_postgres(location))
    pages = release.module
    some_customer, some_order = str(max(shape.customers // 2, 1)), max(shape.orders // 2, 1)
    tests: tuple[tuple[str, Callable[[], Any]], ...] = (
        ("home", lambda: pages.home(db)),
        ("product", lambda: pages.product(db, 1)),
        ("customer_orders", lambda: pages.customer_orders(db, some_customer)),
        ("order", lambda: pages.order(db, some_order)),
        ("search", lambda: pages.search(db, "lamp")),
    )
    try:
        for name, call in tests:
            with collector.test(f"shop/{version}::test_{name}"):
                call()
        run = collector.run()
    finally:
        conn.close()
        collector.close()
    # No baseline: the question is "what would a first gate run say", so every finding is new.
    no_baseline = workdir / f"gate-{version}.no-baseline.json"
    report = run_check(run, explain_dsn=explain_target(location), baseline_path=no_baseline)
    (workdir / f"gate-{version}.md").write_text(render(report, "markdown"))
    return report


def gate_summary(report: CheckReport) -> str:
    """One line: passed, or failed with how many findings."""
    if report.exit_code == 0:
        return "passed"
    new = len(report.new) + len(report.regressions)
    return f"failed ({new} finding{'s' if new != 1 else ''})"
