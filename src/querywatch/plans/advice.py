"""Index advice: candidates from what a plan filters, joins and sorts on, proven with HypoPG.

Candidates come from the plan (PostgreSQL's filter, index and join conditions, sort keys) or, for
SQLite, from the statement's WHERE / JOIN ... ON / ORDER BY: equality columns first (most distinct
values first), then one range column; join keys; equality columns plus ORDER BY columns. Each
candidate is then validated with HypoPG: ``hypopg_create_index`` makes a hypothetical index that
only this session's planner sees (backend-local memory; it is allowed in our read-only session and
writes nothing), the statement is planned again, and the total cost before and after is compared.
Only a candidate the new plan uses and that cuts the cost by ``PlanPolicy.min_improvement`` is
recommended, or one that makes the plan's worst case (``Plan.worst_cost``: no LIMIT or EXISTS
stopping early) ``index_verdict_factor`` times cheaper. For a workload, costs are weighted by
calls. Without HypoPG (not installed in that database, or SQLite) the candidates come back marked
unvalidated, limited to large relations where the plan shows a selective filter or join, and
nothing is "recommended".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from querywatch.config import DEFAULT_STATEMENT_TIMEOUT_MS
from querywatch.errors import DatabaseUnavailable, QuerywatchError
from querywatch.pg import reason, tagged
from querywatch.plans.catalog import Catalog, quote_ident
from querywatch.plans.explain import Explainer, ExplainError
from querywatch.plans.index_candidates import IndexCandidate, candidates_for
from querywatch.plans.model import Dialect, Plan
from querywatch.plans.policy import PlanPolicy
from querywatch.sql import fingerprint

NO_HYPOPG = (
    "HypoPG is not installed in this database: CREATE EXTENSION hypopg; "
    "candidates below are unvalidated"
)
NO_HYPOPG_SQLITE = "SQLite has no hypothetical indexes: candidates below are unvalidated"


@dataclass(slots=True)
class Advice:
    """Index advice for one statement or a workload."""

    dialect: Dialect
    validated: bool  # HypoPG checked every candidate
    candidates: list[IndexCandidate] = field(default_factory=list)
    note: str | None = None  # e.g. HypoPG is missing
    errors: list[str] = field(default_factory=list)  # statements that could not be explained

    @property
    def recommended(self) -> list[IndexCandidate]:
        return [c for c in self.candidates if c.recommended]

    def as_dict(self) -> dict[str, Any]:
        return {
            "validated": self.validated,
            "note": self.note,
            "recommended": [c.as_dict() for c in self.recommended],
            "candidates": [c.as_dict() for c in self.candidates],
            "errors": list(self.errors),
        }


# --- candidates ---------------------------------------------------------------------------------


def hypopg_schema(explainer: Explainer) -> str | None:
    """The schema HypoPG is installed in, or None when it is not installed in this database."""
    if explainer.dialect != "postgres":
        return None
    row = explainer.pg.execute(
        tagged("SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'hypopg'")
    ).fetchone()
    return None if row is None else str(row[0])


def advise(
    target: str | Explainer,
    sql: str,
    *,
    plan: Plan | None = None,
    policy: PlanPolicy | None = None,
    statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS,
) -> Advice:
    """Index advice for one statement (``target``: a DSN, a SQLite path, or an open Explainer)."""
    return advise_workload(
        target,
        [(sql, 1)],
        plans=None if plan is None else [plan],
        policy=policy,
        statement_timeout_ms=statement_timeout_ms,
    )


def advise_workload(
    target: str | Explainer,
    statements: Sequence[tuple[str, int]],
    *,
    plans: Sequence[Plan | None] | None = None,
    policy: PlanPolicy | None = None,
    statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS,
) -> Advice:
    """Index advice for fingerprints weighted by calls: ``statements`` is [(sql, calls)].

    A candidate's cost before/after is the calls-weighted sum over the statements that read its
    table; it is recommended when that sum drops by ``policy.min_improvement`` or more.
    ``plans`` may pass plans already made (same order), so they are not planned twice.
    """
    if isinstance(target, Explainer):
        return _advise_safely(target, statements, plans, policy or PlanPolicy())
    with Explainer(target, statement_timeout_ms=statement_timeout_ms) as explainer:
        return _advise_safely(explainer, statements, plans, policy or PlanPolicy())


def _advise_safely(
    explainer: Explainer,
    statements: Sequence[tuple[str, int]],
    plans: Sequence[Plan | None] | None,
    policy: PlanPolicy,
) -> Advice:
    try:
        return _advise(explainer, statements, plans, policy)
    except psycopg.Error as exc:  # the session broke (HypoPG calls run outside explain())
        raise DatabaseUnavailable(f"index advice stopped: {reason(exc, explainer.target)}") from exc


@dataclass(slots=True)
class _Stmt:
    sql: str
    calls: int
    plan: Plan
    tables: set[tuple[str | None, str]]


def _advise(
    explainer: Explainer,
    statements: Sequence[tuple[str, int]],
    plans: Sequence[Plan | None] | None,
    policy: PlanPolicy,
) -> Advice:
    advice = Advice(dialect=explainer.dialect, validated=False)
    stmts: list[_Stmt] = []
    merged: dict[tuple[str | None, str, tuple[str, ...]], IndexCandidate] = {}
    for n, (sql, calls) in enumerate(statements):
        plan = plans[n] if plans is not None and n < len(plans) else None
        try:
            if plan is None:
                plan = explainer.explain(sql)
            catalog = explainer.catalog(plan)
        except ExplainError as exc:
            advice.errors.append(f"{_short(sql, explainer.dialect)}: {exc}")
            continue
        stmts.append(_Stmt(sql, max(int(calls), 0), plan, _tables(plan, catalog)))
        for cand in candidates_for(plan, catalog, policy):
            seen = merged.get(cand.key)
            if seen is None:
                merged[cand.key] = cand
            else:
                seen.reasons.extend(r for r in cand.reasons if r not in seen.reasons)
                seen.selective = seen.selective or cand.selective
    candidates = list(merged.values())
    schema = hypopg_schema(explainer) if explainer.dialect == "postgres" else None
    if schema is None:
        advice.note = NO_HYPOPG if explainer.dialect == "postgres" else NO_HYPOPG_SQLITE
        advice.candidates = [c for c in candidates if c.selective]
        for c in advice.candidates:
            c.note = "unvalidated"
        return advice
    advice.validated = True
    for cand in candidates:
        _validate(explainer, schema, cand, stmts)
        cand.validated = cand.note is None or not cand.note.startswith("HypoPG rejected")
        cand.recommended = cand.used and (
            (cand.improvement is not None and cand.improvement >= policy.min_improvement)
            or _bounds_worst_case(cand, policy)
        )
        if cand.validated and not cand.recommended and cand.note is None:
            cand.note = (
                "not used by the planner"
                if not cand.used
                else f"saves only {cand.improvement or 0:.0%} of the estimated cost"
            )
    _prune(candidates)
    candidates.sort(key=lambda c: (not c.recommended, -(c.improvement or 0)))
    advice.candidates = candidates
    return advice


def _bounds_worst_case(cand: IndexCandidate, policy: PlanPolicy) -> bool:
    """Whether the index makes the plan's worst case (no LIMIT or EXISTS stopping early,
    ``Plan.worst_cost``) ``index_verdict_factor`` times cheaper, from a worst case costly enough
    to matter: worth having even when the expected cost, which counts on the early stop, barely
    moves."""
    before, after = cand.worst_before, cand.worst_after
    if before is None or after is None or before < policy.index_verdict_min_cost:
        return False
    return before >= policy.index_verdict_factor * max(after, 0.01)


def _tables(plan: Plan, catalog: Catalog) -> set[tuple[str | None, str]]:
    out: set[tuple[str | None, str]] = set()
    for schema, name in plan.relations():
        info = catalog.get(name, schema)
        if info is not None:
            out.add((info.schema, info.name))
    return out


def _validate(explainer: Explainer, schema: str, cand: IndexCandidate, stmts: list[_Stmt]) -> None:
    """Create ``cand`` as a hypothetical index, re-plan the statements on its table, drop it."""
    conn = explainer.pg
    func = f"{quote_ident(schema)}.hypopg_create_index"
    touching = [s for s in stmts if (cand.schema, cand.table) in s.tables]
    if not touching:
        return
    try:
        row = conn.execute(
            tagged(f"SELECT indexrelid, indexname FROM {func}(%s)"), (cand.hypothetical_ddl,)
        ).fetchone()
    except psycopg.Error as exc:
        cand.note = f"HypoPG rejected it: {_one_line(exc)}"
        return
    assert row is not None
    oid, name = int(row[0]), str(row[1])
    before = after = worst_before = worst_after = 0.0
    try:
        for stmt in touching:
            cost = stmt.plan.total_cost or 0.0
            worst = max(stmt.plan.worst_cost or cost, cost)
            before += stmt.calls * cost
            worst_before += stmt.calls * worst
            try:
                new_plan = explainer.explain(stmt.sql)
            except QuerywatchError:
                after += stmt.calls * cost
                worst_after += stmt.calls * worst
                continue
            if name in new_plan.index_names():
                cand.used = True
                cand.statements += 1
                new_cost = min(new_plan.total_cost or cost, cost)
                after += stmt.calls * new_cost
                worst_after += stmt.calls * min(
                    max(new_plan.worst_cost or new_cost, new_cost), worst
                )
            else:
                after += stmt.calls * cost
                worst_after += stmt.calls * worst
    finally:
        conn.execute(tagged(f"SELECT {quote_ident(schema)}.hypopg_drop_index(%s)"), (oid,))
    cand.cost_before, cand.cost_after = before, after
    cand.worst_before, cand.worst_after = worst_before, worst_after


def _prune(candidates: list[IndexCandidate]) -> None:
    """Of two recommended indexes on one table where one's keys start the other's, keep the
    shorter unless the longer is clearly (10%) cheaper."""
    rec = [c for c in candidates if c.recommended]
    for a in rec:
        for b in rec:
            if a is b or not a.recommended or not b.recommended:
                continue
            if (a.schema, a.table) != (b.schema, b.table) or len(a.keys) >= len(b.keys):
                continue
            if b.keys[: len(a.keys)] != a.keys:
                continue
            a_after, b_after = a.cost_after or 0.0, b.cost_after or 0.0
            if b_after < 0.9 * a_after:
                a.recommended = False
                a.note = f"superseded by {b.ddl.split(' ON ')[0].split()[-1]}"
            else:
                b.recommended = False
                b.note = f"no better than {a.ddl.split(' ON ')[0].split()[-1]}"


def _short(sql: str, dialect: Dialect) -> str:
    text = fingerprint(sql, dialect).normalized
    return text if len(text) <= 80 else text[:79] + "…"


def _one_line(exc: BaseException) -> str:
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    return str(primary or exc).splitlines()[0]


__all__ = [
    "NO_HYPOPG",
    "Advice",
    "IndexCandidate",
    "advise",
    "advise_workload",
    "candidates_for",
    "hypopg_schema",
]
