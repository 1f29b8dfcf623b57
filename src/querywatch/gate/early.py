"""Plan each statement while its database still exists: at first sight, during the tests.

A check that EXPLAINs after the test session finds little left to plan: pytest tears session
fixtures down (pytest-django drops its test database, a ``tmp_path`` database file is removed)
before ``pytest_sessionfinish``, and many suites create tables in a test and drop them when it
ends. So ``pytest --querywatch`` plans each new fingerprint when it is first issued, just before
it runs, on the gate's own read-only session (never the application's connection, never a
write), and keeps the verdict in the run (:mod:`querywatch.gate.planned`) for the check.

What cannot be planned at first sight (a table created in a transaction not yet committed, a
lock the application holds) is tried once more at the end of the test, before its fixtures are
torn down, on fresh sessions; then the sessions are closed, so the gate never holds a test
database open while fixtures drop it. A ``CREATE``/``ALTER``/``DROP DATABASE`` the tests issue
closes them too, before it runs. Locks held by the application are waited on briefly
(``LOCK_WAIT_MS``) and never for the whole statement timeout.

Statements of the dialect of ``--explain-dsn`` are left to the check, which plans them there.
"""

from __future__ import annotations

import threading

from querywatch.config import DEFAULT_STATEMENT_TIMEOUT_MS
from querywatch.dsn import is_postgres_url
from querywatch.gate.baseline import plan_signature
from querywatch.gate.collect import Collector
from querywatch.gate.explainer import ExplainSessions, ExplainTarget, StatementNotExplained
from querywatch.gate.planned import PlanRecord
from querywatch.gate.runfile import GateInputError

LOCK_WAIT_MS = 250
"""How long an EXPLAIN during the tests waits for a lock the application holds; then it is tried
again at the end of the test."""


class EarlyPlanner:
    """Plans the new fingerprints the collector hears of (``collector.on_new``)."""

    def __init__(
        self,
        collector: Collector,
        *,
        explain_dsn: str | None = None,
        statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS,
    ) -> None:
        self.collector = collector
        self.statement_timeout_ms = statement_timeout_ms
        self.skip_dialect: str | None = None
        if explain_dsn:
            self.skip_dialect = "postgres" if is_postgres_url(explain_dsn) else "sqlite"
        self._lock = threading.RLock()
        self._sessions: ExplainSessions | None = None
        self._pending: dict[str, tuple[str, str, str]] = {}  # fp -> (sample, dialect, db id)
        self.planned = 0  # statements planned (at first sight or at the end of their test)
        self.deferred = 0  # of which at the end of their test

    def attach(self) -> None:
        """Start planning what the collector records from now on."""
        self.collector.on_new = self.first_sight
        self.collector.on_database_ddl = self.close

    def detach(self) -> None:
        self.collector.on_new = None
        self.collector.on_database_ddl = None
        self.close()

    def first_sight(self, fp: str, sample: str, dialect: str, database: str) -> None:
        """Plan ``fp`` now, before the statement runs (called by the collector, muted)."""
        if dialect == self.skip_dialect:
            return
        with self._lock:
            known = self.collector.plan_of(fp)
            if (known is not None and known.planned) or fp in self._pending:
                return
            if not self._plan(fp, sample, dialect, database, last_try=False):
                self._pending[fp] = (sample, dialect, database)

    def end_of_test(self) -> None:
        """Try what could not be planned at first sight again, on fresh sessions, while the
        test's fixtures still stand; then close every session."""
        with self._lock, self.collector.muted():
            self._close()
            pending, self._pending = self._pending, {}
            for fp, (sample, dialect, database) in pending.items():
                if self._plan(fp, sample, dialect, database, last_try=True):
                    self.deferred += 1
            self._close()

    def close(self) -> None:
        """Close the gate's sessions (a database is about to be dropped or the session ends)."""
        with self._lock, self.collector.muted():
            self._close()

    def _close(self) -> None:
        if self._sessions is not None:
            self._sessions.close()
            self._sessions = None

    def _plan(self, fp: str, sample: str, dialect: str, database: str, *, last_try: bool) -> bool:
        """Plan one statement and keep the verdict; False when it could not be planned (on the
        last try, EXPLAIN's reason is kept instead)."""
        db = self.collector.database_of(database)
        if db is None or db.dialect != dialect:
            return False
        target = ExplainTarget(db.dialect, db.connect_target, shown=db.target)
        if self._sessions is None:
            self._sessions = ExplainSessions(
                statement_timeout_ms=self.statement_timeout_ms,
                lock_wait_ms=LOCK_WAIT_MS,
                keep_sqlite=False,
            )
        self._sessions.add_functions(self.collector.functions())
        try:
            plan, findings = self._sessions.explain([target], sample)
        except (StatementNotExplained, GateInputError) as exc:
            if last_try:
                self.collector.planned(fp, PlanRecord(target.display, error=str(exc)))
            return False
        sig = plan_signature(plan)
        self.collector.planned(
            fp, PlanRecord(target.display, sig.shape, dict(sig.access), sig.cost, findings)
        )
        self.planned += 1
        return True
