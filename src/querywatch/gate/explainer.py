"""EXPLAIN for the gate: one read-only session per database, plan rules, a cost for SQLite.

The gate EXPLAINs every distinct fingerprint of a run, so sessions (``querywatch.plans.explain``)
are opened once per database and reused. A database that cannot be opened is remembered, not
retried per statement. ``--explain-dsn`` must work (the check stops with exit 2 otherwise); a test
database recorded in the run that is gone makes its statements "could not check" entries.

SQLite's EXPLAIN QUERY PLAN gives no costs, so the gate estimates one from table sizes: a full
scan costs the table's rows, an index lookup the logarithm of them. Only its order of magnitude
(the cost class) is compared with the baseline.

SQL functions, aggregates and collations the application registers on its SQLite connections
(Django registers ``django_date_extract`` & co. on every one) do not exist on the gate's own
read-only session; the run records their names and arities and each SQLite session gets a
stand-in of the same name and arity. EXPLAIN QUERY PLAN plans without calling them.
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from querywatch.config import DEFAULT_STATEMENT_TIMEOUT_MS
from querywatch.errors import DatabaseUnavailable, QuerywatchError
from querywatch.findings import Finding
from querywatch.gate.runfile import GateInputError, Registered

if TYPE_CHECKING:  # psycopg and sqlglot load when the first statement is explained
    from querywatch.plans.catalog import Catalog
    from querywatch.plans.explain import Explainer as Session
    from querywatch.plans.model import Plan


@dataclass(frozen=True, slots=True)
class ExplainTarget:
    """Where to EXPLAIN: ``target`` may hold a password, ``display`` never does."""

    dialect: str
    target: str
    shown: str | None = None
    explicit: bool = False  # given as --explain-dsn (must work) rather than recorded in the run

    @property
    def display(self) -> str:
        if self.shown is not None:
            return self.shown
        from querywatch.pg import display_dsn

        return display_dsn(self.target) if self.dialect == "postgres" else self.target


class StatementNotExplained(Exception):
    """One statement could not be EXPLAINed; ``str()`` is the reason, ``target`` where."""

    def __init__(self, reason: str, target: str) -> None:
        super().__init__(reason)
        self.target = target


class ExplainSessions:
    """``lock_wait_ms``: how long EXPLAIN waits for a lock the application holds (SQLite's busy
    timeout, PostgreSQL's ``lock_timeout``; default: the statement timeout). ``functions``: the
    registered SQLite functions to give stand-ins (more with :meth:`add_functions`).

    ``keep_sqlite`` False opens a SQLite session per statement: while the tests run, the schema
    and the data change under it, and a SQLite connection plans EXPLAIN QUERY PLAN with the
    schema it read last (an index created since by another connection is not seen), while the
    session's catalog keeps the sizes it read first. Opening a file costs well under a
    millisecond."""

    def __init__(
        self,
        *,
        statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS,
        lock_wait_ms: int | None = None,
        functions: Iterable[Registered] = (),
        keep_sqlite: bool = True,
    ) -> None:
        self.statement_timeout_ms = statement_timeout_ms
        self.lock_wait_ms = lock_wait_ms
        self._sessions: dict[str, Session] = {}
        self.keep_sqlite = keep_sqlite
        self._broken: dict[str, str] = {}  # target -> why it cannot be opened
        self._functions: set[Registered] = set(functions)

    def add_functions(self, functions: Iterable[Registered]) -> None:
        """Stand-ins for these too, on the open SQLite sessions and every one opened later."""
        new = set(functions) - self._functions
        if new:
            self._functions |= new
            for session in self._sessions.values():
                conn = _sqlite_connection(session)
                if conn is not None:
                    register_stand_ins(conn, new)

    def __enter__(self) -> ExplainSessions:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        for session in self._sessions.values():
            with contextlib.suppress(Exception):  # a dead session must not hide the report
                session.close()
        self._sessions.clear()

    def probe(self, target: ExplainTarget) -> None:
        """Open ``target`` now: an unusable --explain-dsn stops the check before it starts."""
        try:
            self._session(target)
        except DatabaseUnavailable as exc:
            raise GateInputError(f"--explain-dsn: {exc}") from None

    def _session(self, target: ExplainTarget) -> Session:
        session = self._sessions.get(target.target)
        if session is not None:
            return session
        if target.target in self._broken:
            raise DatabaseUnavailable(self._broken[target.target])
        from querywatch.plans.explain import Explainer as Session

        timeout_ms = self.statement_timeout_ms
        if target.dialect == "sqlite" and self.lock_wait_ms is not None:
            # a SQLite session's timeout is its busy timeout (and a quarter of it the budget to
            # count a table's rows, then max(rowid)): opening it must not wait longer
            timeout_ms = min(timeout_ms, self.lock_wait_ms)
        try:
            session = Session(target.target, statement_timeout_ms=timeout_ms)
        except QuerywatchError as exc:
            self._broken[target.target] = str(exc)
            raise DatabaseUnavailable(str(exc)) from None
        self._configure(session)
        self._sessions[target.target] = session
        return session

    def _drop(self, target: ExplainTarget) -> None:
        session = self._sessions.pop(target.target, None)
        if session is not None:
            with contextlib.suppress(Exception):
                session.close()

    def _configure(self, session: Session) -> None:
        conn = _sqlite_connection(session)
        if conn is not None:
            register_stand_ins(conn, self._functions)
        elif self.lock_wait_ms is not None and session.dialect == "postgres":
            with contextlib.suppress(Exception):  # the default lock_timeout stays
                session.pg.execute(
                    "SELECT set_config('lock_timeout', %s, false)", [str(int(self.lock_wait_ms))]
                )

    def explain(self, targets: list[ExplainTarget], sql: str) -> tuple[Plan, list[Finding]]:
        """The plan of ``sql`` on the first target that can be opened, and the plan rules'
        findings. Raises StatementNotExplained, or GateInputError when --explain-dsn fails."""
        from querywatch.plans.explain import ExplainError

        problems = []
        for target in targets:
            try:
                session = self._session(target)
            except DatabaseUnavailable as exc:
                if target.explicit:
                    raise GateInputError(f"--explain-dsn: {exc}") from None
                problems.append(
                    f"the test database {target.display} cannot be opened ({exc}); pass"
                    " --explain-dsn"
                )
                continue
            try:
                plan = session.explain(sql)
                catalog = session.catalog(plan)
            except DatabaseUnavailable as exc:
                if target.explicit:
                    raise GateInputError(f"--explain-dsn: {exc}") from None
                self._broken[target.target] = str(exc)
                problems.append(str(exc))
                continue
            except ExplainError as exc:
                if session.dialect == "sqlite" and not self.keep_sqlite:
                    self._drop(target)
                raise StatementNotExplained(_reason(exc), target.display) from None
            if plan.dialect == "sqlite" and plan.root.total_cost is None:
                plan.root.total_cost = sqlite_cost(plan, catalog)
            try:
                return plan, plan_findings(plan, catalog, session, sql)
            finally:
                if session.dialect == "sqlite" and not self.keep_sqlite:
                    self._drop(target)
        raise StatementNotExplained("; ".join(problems) or "no database to EXPLAIN on", "")


def _sqlite_connection(session: Session) -> sqlite3.Connection | None:
    """The SQLite connection of an EXPLAIN session (None on PostgreSQL). The planner keeps it
    private; the gate only registers stand-in functions on it and sets its busy timeout."""
    conn = getattr(session, "_sqlite", None)
    return conn if isinstance(conn, sqlite3.Connection) else None


def _nothing(*_args: Any) -> None:
    return None


def _compare(a: str, b: str) -> int:
    return (a > b) - (a < b)


class _Aggregate:
    """A stand-in aggregate (and window function): EXPLAIN QUERY PLAN never runs it."""

    def step(self, *_args: Any) -> None:
        return None

    def inverse(self, *_args: Any) -> None:
        return None

    def value(self) -> None:
        return None

    def finalize(self) -> None:
        return None


def register_stand_ins(conn: sqlite3.Connection, functions: Iterable[Registered]) -> None:
    """Register a do-nothing function, aggregate, window function or collation of each name
    and arity, so statements that call the application's functions can be planned."""
    for kind, name, narg in sorted(functions):
        try:
            if kind == "function":
                conn.create_function(name, narg, _nothing, deterministic=True)
            elif kind == "aggregate":
                conn.create_aggregate(name, narg, _Aggregate)  # type: ignore[arg-type]
            elif kind == "window":
                conn.create_window_function(name, narg, _Aggregate)  # type: ignore[arg-type]
            elif kind == "collation":
                conn.create_collation(name, _compare)
        except (sqlite3.Error, ValueError, TypeError, OverflowError):
            continue  # a name or arity sqlite3 refuses: statements using it stay unplanned


def _reason(exc: Exception) -> str:
    return str(exc).removeprefix("cannot explain the statement: ")


def sqlite_cost(plan: Plan, catalog: Catalog) -> float:
    """An estimated cost for a SQLite plan (which has none). A full scan (of the table or of a
    whole index) reads the table's rows,
    an index lookup log2 of them; SQLite joins are nested loops, so each scan runs once per row of
    the loops outside it: all rows of an unfiltered full scan, the square root of a filtered one,
    one per lookup. Rough, but right to an order of magnitude, which is all the cost class keeps.
    """
    total = 0.0
    outer = 1.0
    for node in plan.scans():
        info = catalog.for_node(node)
        rows = float(info.rows) if info is not None and info.rows else 1000.0  # unknown: small
        if node.node_type == "Seq Scan" or (node.detail or "").startswith("SCAN "):
            total += outer * rows
            outer *= math.sqrt(rows) if node.filter else rows
        else:
            total += outer * math.log2(rows + 2)
    return max(total, 1.0)


def plan_findings(plan: Plan, catalog: Catalog, session: Session, sql: str) -> list[Finding]:
    """The plan rules' verdict on ``plan``, with validated index advice where it can change it
    (``querywatch.plans.report.judge_plan``: the same verdict `querywatch explain` gives)."""
    from querywatch.plans.report import judge_plan

    return judge_plan(session, sql, plan, catalog)
