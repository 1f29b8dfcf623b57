"""``manage.py test --querywatch``: the CI gate under Django's own test runner.

Set ``TEST_RUNNER = "querywatch.contrib.django.runner.QueryWatchTestRunner"``; without
``--querywatch`` it is Django's ``DiscoverRunner``. With it, as ``pytest --querywatch`` does:
every statement is recorded for the test that issued it (from ``startTest`` to ``stopTest``;
class-level set-up belongs to no test), each new one is EXPLAINed at first sight on the test
database, the test database's creation and migrations are not recorded (and the app's own
capture is stopped: test traffic is not production traffic), and at the end the run file is
written, the check runs and its report is printed, N+1 findings naming the ORM relation.
Failing tests keep their exit status; otherwise the gate's (1 new findings, 2 could not check).
"""

from __future__ import annotations

import inspect
import sys
import unittest
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.test.runner import DiscoverRunner

from querywatch.contrib.django.gate import DjangoGate, advise_report
from querywatch.errors import QuerywatchError
from querywatch.gate.baseline import DEFAULT_BASELINE_PATH
from querywatch.gate.check import DEFAULT_FAIL_ON, DEFAULT_MAX_REPEATS, FAIL_ON, run_check
from querywatch.gate.collect import DEFAULT_RUN_PATH, Collector
from querywatch.gate.early import EarlyPlanner
from querywatch.gate.pytest_plugin import _statement_timeout_ms


class QueryWatchTestRunner(DiscoverRunner):  # type: ignore[misc]  # Django ships no type hints
    """Django's test runner with the querywatch gate behind ``--querywatch``."""

    @classmethod
    def add_arguments(cls, parser: ArgumentParser) -> None:
        super().add_arguments(parser)
        group = parser.add_argument_group("querywatch CI gate")
        group.add_argument(
            "--querywatch",
            action="store_true",
            help="Record the SQL each test issues and fail on new query findings.",
        )
        group.add_argument("--querywatch-run", default=str(DEFAULT_RUN_PATH), metavar="FILE")
        group.add_argument(
            "--querywatch-baseline", default=str(DEFAULT_BASELINE_PATH), metavar="FILE"
        )
        group.add_argument("--querywatch-explain-dsn", default=None, metavar="DSN")
        group.add_argument(
            "--querywatch-max-repeats", type=int, default=DEFAULT_MAX_REPEATS, metavar="K"
        )
        group.add_argument("--querywatch-fail-on", choices=FAIL_ON, default=DEFAULT_FAIL_ON)
        group.add_argument("--querywatch-update-baseline", action="store_true")

    def __init__(
        self,
        *args: Any,
        querywatch: bool = False,
        querywatch_run: str = str(DEFAULT_RUN_PATH),
        querywatch_baseline: str = str(DEFAULT_BASELINE_PATH),
        querywatch_explain_dsn: str | None = None,
        querywatch_max_repeats: int = DEFAULT_MAX_REPEATS,
        querywatch_fail_on: str = DEFAULT_FAIL_ON,
        querywatch_update_baseline: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.querywatch = querywatch
        self.run_path = Path(querywatch_run)
        self.baseline_path = Path(querywatch_baseline)
        self.explain_dsn = querywatch_explain_dsn
        self.max_repeats = querywatch_max_repeats
        self.fail_on = querywatch_fail_on
        self.update_baseline = querywatch_update_baseline
        self.collector = Collector()
        self.planner = EarlyPlanner(
            self.collector,
            explain_dsn=querywatch_explain_dsn,
            statement_timeout_ms=_statement_timeout_ms(),
        )
        self.gate = DjangoGate(self.collector)

    def setup_databases(self, **kwargs: Any) -> Any:
        if not self.querywatch:
            return super().setup_databases(**kwargs)
        with self.gate.setting_up():
            return super().setup_databases(**kwargs)

    def get_resultclass(self) -> Any:
        base = super().get_resultclass()
        if not self.querywatch:
            return base
        return _recording_result(base or unittest.TextTestResult, self)

    def run_tests(self, test_labels: Any, **kwargs: Any) -> int:
        if not self.querywatch:
            return int(super().run_tests(test_labels, **kwargs))
        from querywatch.contrib.django import capture

        capture.stop()  # the app's own capture: test traffic is not production traffic
        self.planner.attach()
        self.gate.install()
        try:
            failures = int(super().run_tests(test_labels, **kwargs))
        finally:
            self.gate.uninstall()
            self.planner.detach()
        code = self._check()
        if not failures and code:
            sys.exit(code)
        return failures

    def _check(self) -> int:
        """Write the run file, run the check, print its report; the gate's exit code."""
        from querywatch.dsn import redact
        from querywatch.gate.reports import terminal

        run = self.collector.close()
        try:
            run.save(self.run_path)
            report = run_check(
                run,
                explain_dsn=self.explain_dsn,
                baseline_path=self.baseline_path,
                max_repeats=self.max_repeats,
                update_baseline=self.update_baseline,
                statement_timeout_ms=self.planner.statement_timeout_ms,
                fail_on=self.fail_on,
            )
        except QuerywatchError as exc:
            sys.stderr.write(f"querywatch: could not check: {redact(str(exc))}\n")
            return 2
        advise_report(report)
        sys.stderr.write(terminal(report, color=sys.stderr.isatty()))
        sys.stderr.write(f"run file: {self.run_path}\n")
        return report.exit_code


def _recording_result(base: type[Any], runner: QueryWatchTestRunner) -> type[Any]:
    """``base`` whose startTest/stopTest tell the collector which test runs."""

    class QueryWatchResult(base):  # type: ignore[misc]
        def startTest(self, test: Any) -> None:
            super().startTest(test)
            path = inspect.getsourcefile(type(test))
            runner.collector.enter(test.id(), "call", path)

        def stopTest(self, test: Any) -> None:
            runner.planner.end_of_test()
            runner.collector.leave()
            super().stopTest(test)

    return QueryWatchResult
