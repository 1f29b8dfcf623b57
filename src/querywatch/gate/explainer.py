"""EXPLAIN for the gate: one read-only session per database, plan rules, a cost for SQLite.

The gate EXPLAINs every distinct fingerprint of a run, so sessions (``querywatch.plans.explain``)
are opened once per database and reused. A database that cannot be opened is remembered, not
retried per statement. ``--explain-dsn`` must work (the check stops with exit 2 otherwise); a test
database recorded in the run that is gone makes its statements "could not check" entries.

SQLite's EXPLAIN QUERY PLAN gives no costs, so the gate estimates one from table sizes: a full
scan costs the table's rows, an index lookup the logarithm of them. Only its order of magnitude
(the cost class) is compared with the baseline.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

from querywatch.errors import DatabaseUnavailable, QuerywatchError
from querywatch.findings import Finding
from querywatch.gate.collect import GateInputError

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
    def __init__(self, *, statement_timeout_ms: int = 5000) -> None:
        self.statement_timeout_ms = statement_timeout_ms
        self._sessions: dict[str, Session] = {}
        self._broken: dict[str, str] = {}  # target -> why it cannot be opened

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

        try:
            session = Session(target.target, statement_timeout_ms=self.statement_timeout_ms)
        except QuerywatchError as exc:
            self._broken[target.target] = str(exc)
            raise DatabaseUnavailable(str(exc)) from None
        self._sessions[target.target] = session
        return session

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
                raise StatementNotExplained(_reason(exc), target.display) from None
            if plan.dialect == "sqlite" and plan.root.total_cost is None:
                plan.root.total_cost = sqlite_cost(plan, catalog)
            return plan, plan_findings(plan, catalog, session, sql)
        raise StatementNotExplained("; ".join(problems) or "no database to EXPLAIN on", "")


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
