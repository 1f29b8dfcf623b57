"""``pytest --querywatch``: record every statement each test issues, then run the gate.

Registered as the ``querywatch`` pytest11 entry point, so installing querywatch adds the options;
nothing else happens unless ``--querywatch`` is given. Then, for the whole session,
``sqlite3.connect`` and psycopg's ``connect`` are patched so every connection opened during the
tests is recorded (restored at the end); statements are attributed to the running test (its body,
or its fixtures' setup and teardown). Each new statement is EXPLAINed at first sight, while its
database exists, on the gate's own read-only session (:mod:`querywatch.gate.early`); what could
not be planned then is tried again at the end of its test, before the test's fixtures are torn
down (pytest tears session fixtures, and pytest-django's test database, down inside the last
test's teardown, long before ``pytest_sessionfinish``). At the end the run file is written
(``--querywatch-run``, default ``.querywatch/gate-run.json``), the same check as
``querywatch check`` runs, its terminal report is printed, and the session fails: exit status 1
for new findings or regressions at ``--querywatch-fail-on`` or above (default warning; ``info``
never fails), 2 when the gate could not check (if the tests themselves passed; failing tests keep
their own status). A ``querywatch_collector`` fixture hands the collector to
tests that open connections some other way (``collector.wrap(conn)``).

Not supported with pytest-xdist (``-n``): each worker would record only its own tests.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest

from querywatch.config import DEFAULT_STATEMENT_TIMEOUT_MS
from querywatch.errors import QuerywatchError
from querywatch.gate.baseline import DEFAULT_BASELINE_PATH
from querywatch.gate.check import (
    DEFAULT_FAIL_ON,
    DEFAULT_MAX_REPEATS,
    FAIL_ON,
    CheckReport,
    run_check,
)
from querywatch.gate.collect import DEFAULT_RUN_PATH, Collector
from querywatch.gate.early import EarlyPlanner

PLUGIN_NAME = "querywatch-gate"
_NOT_CHECKED = (
    pytest.ExitCode.INTERRUPTED,
    pytest.ExitCode.INTERNAL_ERROR,
    pytest.ExitCode.USAGE_ERROR,
)


def _statement_timeout_ms() -> int:
    """``statement_timeout_ms`` from the querywatch settings (env, querywatch.toml), as
    ``querywatch check`` reads it; the default when the settings cannot be read."""
    try:
        from querywatch.config import load_config

        return int(load_config({})["statement_timeout_ms"])
    except (QuerywatchError, KeyError, TypeError, ValueError):
        return DEFAULT_STATEMENT_TIMEOUT_MS


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("querywatch", "querywatch CI gate")
    group.addoption(
        "--querywatch",
        action="store_true",
        default=False,
        help="Record the SQL each test issues and fail on new query findings (N+1, full scans…).",
    )
    group.addoption(
        "--querywatch-run",
        metavar="FILE",
        default=str(DEFAULT_RUN_PATH),
        help=f"Where to write the run file (default {DEFAULT_RUN_PATH}).",
    )
    group.addoption(
        "--querywatch-baseline",
        metavar="FILE",
        default=str(DEFAULT_BASELINE_PATH),
        help=f"The committed baseline (default {DEFAULT_BASELINE_PATH}).",
    )
    group.addoption(
        "--querywatch-explain-dsn",
        metavar="DSN",
        default=None,
        help="EXPLAIN against this database (default: the test database each statement ran on).",
    )
    group.addoption(
        "--querywatch-max-repeats",
        metavar="K",
        type=int,
        default=DEFAULT_MAX_REPEATS,
        help="N+1: flag a read run more than K times in one call of a test into the application"
        f" (default {DEFAULT_MAX_REPEATS}).",
    )
    group.addoption(
        "--querywatch-fail-on",
        choices=FAIL_ON,
        default=DEFAULT_FAIL_ON,
        help="The lowest severity of a new finding that fails the session (default"
        f" {DEFAULT_FAIL_ON}; info never fails).",
    )
    group.addoption(
        "--querywatch-update-baseline",
        action="store_true",
        default=False,
        help="Accept the current findings: rewrite the baseline instead of failing.",
    )


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("querywatch", default=False):
        return
    if hasattr(config, "workerinput") or getattr(config.option, "numprocesses", None):
        # Each xdist worker would see only its own tests and the controller none: a false pass.
        raise pytest.UsageError("--querywatch does not work with pytest-xdist (-n): run without -n")
    config.pluginmanager.register(GatePlugin(config), PLUGIN_NAME)


@pytest.fixture
def querywatch_collector(request: pytest.FixtureRequest) -> Collector | None:
    """The session's collector when ``--querywatch`` is on (wrap other connections with it)."""
    plugin = request.config.pluginmanager.get_plugin(PLUGIN_NAME)
    return plugin.collector if isinstance(plugin, GatePlugin) else None


class GatePlugin:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.collector = Collector()
        self.planner = EarlyPlanner(
            self.collector,
            explain_dsn=config.getoption("querywatch_explain_dsn"),
            statement_timeout_ms=_statement_timeout_ms(),
        )
        self._undo: Callable[[], None] | None = None
        self.report: CheckReport | None = None
        self.error: str | None = None
        self.run_path = self._path(config.getoption("querywatch_run"))

    def _path(self, value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() else self.config.invocation_params.dir / path

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        from querywatch.gate.connections import patch

        self._undo = patch(self.collector)
        self.planner.attach()

    def _restore(self) -> None:
        if self._undo is not None:
            self.planner.detach()
            self._undo()
            self._undo = None

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, Any, Any]:
        self.collector.enter(item.nodeid, "setup", str(item.path))
        try:
            return (yield)
        finally:
            self.collector.leave()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, Any]:
        self.planner.close()  # the body's statements are planned with what its fixtures built
        self.collector.enter(item.nodeid, "call", str(item.path))
        try:
            return (yield)
        finally:
            self.collector.leave()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, Any, Any]:
        # Before the fixtures are finalized: the test's tables, and for the last test the
        # session's databases, still exist. Then the gate holds no database open.
        self.planner.end_of_test()
        self.collector.enter(item.nodeid, "teardown", str(item.path))
        try:
            return (yield)
        finally:
            self.collector.leave()

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.planner.end_of_test()  # statements of the last fixtures' teardown
        self._restore()  # before the check, whose own EXPLAIN sessions must not be recorded
        run = self.collector.close()
        opt = self.config.getoption
        code = 0
        try:
            run.save(self.run_path)
            if session.exitstatus in _NOT_CHECKED:
                self.error = f"the session ended early ({session.exitstatus!r}): not checked"
                return
            self.report = run_check(
                run,
                explain_dsn=opt("querywatch_explain_dsn"),
                baseline_path=self._path(opt("querywatch_baseline")),
                max_repeats=opt("querywatch_max_repeats"),
                update_baseline=opt("querywatch_update_baseline"),
                statement_timeout_ms=self.planner.statement_timeout_ms,
                fail_on=opt("querywatch_fail_on"),
            )
            code = self.report.exit_code
        except QuerywatchError as exc:
            self.error = str(exc)
            code = 2
        if code and session.exitstatus == 0:
            session.exitstatus = code

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self._restore()

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        from querywatch.dsn import redact
        from querywatch.gate.reports import terminal

        tr = terminalreporter
        tr.write_sep("=", "querywatch")
        if self.error is not None:
            tr.write_line(f"querywatch: could not check: {redact(self.error)}", red=True, bold=True)
            tr.write_line(f"run file: {self.run_path}")
            return
        if self.report is None:
            return
        color = bool(getattr(tr, "hasmarkup", False))
        width = self.config.get_terminal_writer().fullwidth
        tr.write(terminal(self.report, color=color, width=width))
        tr.write_line(f"run file: {self.run_path}")
