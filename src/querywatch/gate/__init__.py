"""The CI gate: ``pytest --querywatch`` records the SQL each test issues, ``querywatch check``
lints and EXPLAINs it, flags N+1 and compares with the committed baseline (docs/gate.md).

In-process use (what the CLI and the pytest plugin do)::

    collector = Collector()
    with collector.test("shop::customer_orders"):
        conn = collector.wrap(sqlite3.connect("shop.db"))
        ...
    report = run_check(collector.run(), baseline_path="querywatch.baseline.json")
    print(render(report, "markdown")); sys.exit(report.exit_code)
"""

from querywatch.gate.baseline import GateBaseline
from querywatch.gate.check import CheckReport, run_check
from querywatch.gate.collect import Collector, GateInputError, GateRun
from querywatch.gate.reports import render
from querywatch.gate.statement import QueryResult

__all__ = [
    "CheckReport",
    "Collector",
    "GateBaseline",
    "GateInputError",
    "GateRun",
    "QueryResult",
    "render",
    "run_check",
]
