"""One fingerprint of a run, checked: lint, the plan (judged during the run, or EXPLAINed now),
N+1; and why a statement could not be planned when it could not.

A plan judged while the tests ran (:mod:`querywatch.gate.early`) is used as it was kept, unless
``--explain-dsn`` names a database of the statement's dialect (then it is planned there). Lint
rules that guess from the text what only a plan can tell (``Rule.needs_plan``) give way to the
plan rules where there is a plan, and stay as ``info`` notes where there is none.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from querywatch.findings import Finding, Location
from querywatch.gate.baseline import PlanSignature, plan_signature
from querywatch.gate.collect import MAX_SAMPLE, GateRun, RunStatement
from querywatch.gate.explainer import ExplainSessions, ExplainTarget, StatementNotExplained
from querywatch.gate.nplusone import N_PLUS_ONE, n_plus_one
from querywatch.gate.objects import missing_objects
from querywatch.records import CallSite

EXPLAIN_FAILED = "explain-failed"
PARSE_ERROR = "parse-error"


@dataclass(slots=True)
class QueryResult:
    """One fingerprint as checked: where it runs, what was found, its plan signature."""

    fingerprint: str
    normalized: str
    dialect: str
    sites: list[tuple[CallSite, int]] = field(default_factory=list)
    tests: list[str] = field(default_factory=list)
    max_calls: int = 0
    max_calls_test: str | None = None
    findings: list[Finding] = field(default_factory=list)
    signature: PlanSignature | None = None
    explained: bool = False
    note: str | None = None  # why it was not EXPLAINed
    not_checkable: str | None = None  # a key of NOT_CHECKABLE: why it could not be EXPLAINed
    origin: str = "run"  # "run" (captured in tests) or "source" (found in the source tree)

    @property
    def location(self) -> Location | None:
        return _location(self.sites[0][0]) if self.sites else None


def _location(site: CallSite) -> Location:
    return Location(site.path, site.line, 1, site.function)


NOT_CHECKABLE = {
    "in-memory": "ran on an in-memory database and were not EXPLAINed; pass --explain-dsn (a"
    " database with the schema and realistic data) to check plans",
    "removed": "ran on a test database file removed before the check and were not EXPLAINed;"
    " pass --explain-dsn to check plans",
    "temporary": "used a table or function the tests created, dropped or registered themselves"
    " (gone when the check ran) and were not EXPLAINed; not a failure",
    "errored": "failed when the tests ran them (tests of error handling) and EXPLAIN rejects"
    " them too; not a failure",
    "too-long": f"were longer than {MAX_SAMPLE:,} characters: too long to check",
}
"""Why a statement could not be EXPLAINed for a reason of the test run itself: one note each."""


def _targets(
    run: GateRun, stmt: RunStatement, explicit: ExplainTarget | None
) -> list[ExplainTarget]:
    if explicit is not None and explicit.dialect == stmt.dialect:
        return [explicit]
    out = []
    for db_id in stmt.databases:
        db = run.databases.get(db_id)
        if db is not None and db.dialect == stmt.dialect:
            out.append(ExplainTarget(db.dialect, db.connect_target, shown=db.target))
    return out


def check_statement(
    run: GateRun,
    stmt: RunStatement,
    explicit: ExplainTarget | None,
    explainer: ExplainSessions,
    max_repeats: int,
) -> QueryResult:
    max_calls, max_test = run.max_calls(stmt.fingerprint)
    q = QueryResult(
        stmt.fingerprint,
        stmt.normalized,
        stmt.dialect,
        sites=run.sites_of(stmt.fingerprint),
        tests=run.tests_of(stmt.fingerprint),
        max_calls=max_calls,
        max_calls_test=max_test,
    )
    where = q.location
    text = stmt.sample or stmt.normalized
    lint = [] if stmt.too_long else _lint(text, stmt.dialect)
    findings: list[Finding] = []
    targets = _targets(run, stmt, explicit)
    early = (
        None
        if explicit is not None and explicit.dialect == stmt.dialect
        else run.plans.get(stmt.fingerprint)
    )
    failed: StatementNotExplained | None = None
    if early is not None and early.planned:  # judged while the tests ran
        q.explained = True
        q.signature = PlanSignature(early.shape or "", dict(early.access), early.cost)
        findings.extend(early.findings)
    elif stmt.too_long:
        q.not_checkable, q.note = "too-long", f"{stmt.too_long:,} characters: too long to check"
    elif not targets:
        q.not_checkable, q.note = "in-memory", "in-memory database: not EXPLAINed"
    elif early is None and all(
        not t.explicit and t.dialect == "sqlite" and not Path(t.target).exists() for t in targets
    ):
        q.not_checkable, q.note = "removed", "the test database file is gone: not EXPLAINed"
    else:
        try:
            plan, rule_findings = explainer.explain(targets, text)
        except StatementNotExplained as exc:
            # EXPLAIN's answer while the tests ran (the database existed then) says more
            failed = (
                exc if early is None else StatementNotExplained(early.error or "", early.database)
            )
        else:
            q.explained = True
            q.signature = plan_signature(plan)
            findings.extend(rule_findings)
    if failed is not None:
        if missing_objects(str(failed)) & run.objects:
            q.not_checkable = "temporary"
            q.note = f"not checkable: {failed} (the tests made and removed it)"
        elif stmt.errors:
            q.not_checkable = "errored"
            q.note = f"not checkable: {failed} (it failed when the tests ran it too)"
        else:
            q.note = f"EXPLAIN failed: {failed}"
            findings.append(_explain_failed(failed, stmt.dialect))
    findings = _weigh_lint(lint, planned=q.explained) + findings
    repeated = n_plus_one(run, stmt, max_repeats)
    if repeated is not None:
        findings.append(repeated)
    q.findings = _dedupe(
        replace(
            f,
            fingerprint=stmt.fingerprint,
            sql=stmt.normalized,
            location=f.location if f.rule == N_PLUS_ONE and f.location else where,
        )
        for f in findings
    )
    return q


def plan_dependent_rules() -> frozenset[str]:
    """Ids of the lint rules whose verdict depends on sizes and indexes (``Rule.needs_plan``)."""
    from querywatch.sql.rules import RULES

    return frozenset(r.id for r in RULES if r.needs_plan)


UNPLANNED = " (from the text alone: the plan could not be checked)"


def _weigh_lint(findings: list[Finding], *, planned: bool) -> list[Finding]:
    """A lint rule that needs a plan (a LIKE '%x', a cast on a column, a deep OFFSET…) guesses
    what the plan rules measure. Where the statement was planned, the plan rules speak for it and
    the guess is dropped; where it could not be, the guess stays as an ``info`` note, which never
    fails the gate."""
    needs_plan = plan_dependent_rules()
    out = []
    for f in findings:
        if f.rule not in needs_plan:
            out.append(f)
        elif not planned:  # as `querywatch lint` reports it (lint.without_plan), and why
            out.append(
                replace(
                    f,
                    severity="info",
                    message=f.message + UNPLANNED,
                    evidence={**f.evidence, "needs_plan": True},
                )
            )
    return out


def _explain_failed(exc: StatementNotExplained, dialect: str) -> Finding:
    needs = (
        "the same tables, attached databases and loadable extensions as in production"
        if dialect == "sqlite"
        else "the schema and extensions of production"
    )
    return Finding(
        EXPLAIN_FAILED,
        "warning",
        f"could not check this statement: {exc}",
        f"EXPLAIN it on a database with {needs} (--explain-dsn), or accept it with"
        " --update-baseline",
        {"database": exc.target},
    )


def _lint(text: str, dialect: str) -> list[Finding]:
    from querywatch.sql.lint import lint_sql

    try:
        return lint_sql(text, dialect, map_positions=False)
    except Exception as exc:  # a lint bug must not hide the rest of the check
        return [
            Finding(
                PARSE_ERROR,
                "warning",
                f"could not lint this statement: {exc}",
                "report this statement to querywatch; nothing else was linted in it",
            )
        ]


def _dedupe(findings: Iterable[Finding]) -> list[Finding]:
    """One finding per rule (lint and plan rules may both see a shape), in a stable order."""
    seen: dict[str, Finding] = {}
    for f in findings:
        seen.setdefault(f.rule, f)
    return sorted(seen.values(), key=lambda f: f.rule)
