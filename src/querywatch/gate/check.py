"""The check behind ``querywatch check`` and ``pytest --querywatch``.

For every distinct fingerprint of a run: lint the statement, EXPLAIN it (against ``--explain-dsn``
or the test database the run recorded) and apply the plan rules; flag N+1 (one call of a test into
the application reading with the same statement more than K times); then compare with the
baseline. What the baseline does not accept is *new*; what got worse than the baseline is a
*regression* (cost class up, a relation read by a worse scan, more calls); baseline findings that
no longer occur are *fixed*.

Exit codes: 0 clean (or everything accepted, or only findings below ``fail_on``), 1 new findings
or regressions of severity ``fail_on`` or above (default warning: ``info`` never fails), 2 the
gate could not check: the run file, the baseline or the EXPLAIN database cannot be used (raised as
:class:`~querywatch.gate.collect.GateInputError` before any report), or some statement could not
be checked (it does not parse, EXPLAIN rejects it). Findings win over "could not check": a run
with both exits 1, because the findings are certain and must be fixed either way. A statement that
could not be checked can be accepted into the baseline like a finding (its rule id is
``parse-error`` or ``explain-failed``). Statements that cannot be EXPLAINed for a reason of the
test run itself (an in-memory or removed test database, a table or function the tests created
and dropped, a text too long to keep) are *not checkable*: counted in a note, never a failure.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from querywatch.config import DEFAULT_STATEMENT_TIMEOUT_MS
from querywatch.dsn import is_postgres_url, redact
from querywatch.findings import Finding
from querywatch.gate.baseline import (
    DEFAULT_BASELINE_PATH,
    BaselineEntry,
    GateBaseline,
    cost_class,
    worse_access,
)
from querywatch.gate.collect import GateInputError, GateRun, is_plannable
from querywatch.gate.explainer import ExplainSessions, ExplainTarget
from querywatch.gate.nplusone import N_PLUS_ONE
from querywatch.gate.statement import (
    EXPLAIN_FAILED,
    NOT_CHECKABLE,
    PARSE_ERROR,
    QueryResult,
    check_statement,
)
from querywatch.plans.policy import PlanPolicy
from querywatch.records import CallSite
from querywatch.sql.fingerprint import fingerprint

DEFAULT_MAX_REPEATS = 10
SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}
FAIL_ON = ("error", "warning")
"""``--fail-on``: the lowest severity that fails the gate. ``info`` never fails."""
DEFAULT_FAIL_ON = "warning"

COST_REGRESSION = "cost-regression"
PLAN_REGRESSION = "plan-regression"
CALLS_REGRESSION = "calls-regression"
UNCHECKED_RULES = frozenset({EXPLAIN_FAILED, PARSE_ERROR})
REGRESSION_MIN_COST = PlanPolicy().index_verdict_min_cost
"""A cost or plan regression counts when the new plan costs at least this much (10,000: about
50 ms, the cost from which the plan rules give index advice); cheaper plans are noise."""
"""Rule ids of "could not check this statement" entries."""

GATE_RULES = {
    N_PLUS_ONE: "One call of a test into the application reads with the same statement more than"
    " K times: one query per row (N+1).",
    COST_REGRESSION: "The statement's estimated plan cost rose by an order of magnitude or more "
    "over the baseline.",
    PLAN_REGRESSION: "The plan changed and reads a relation with a worse scan than the baseline "
    "(an index scan became a full scan).",
    CALLS_REGRESSION: "A test runs the statement more often than the baseline accepted, beyond K.",
    EXPLAIN_FAILED: "The statement could not be EXPLAINed, so its plan was not checked.",
}


@dataclass(frozen=True, slots=True)
class Fixed:
    fingerprint: str
    normalized: str
    rule: str


@dataclass(slots=True)
class CheckReport:
    queries: list[QueryResult] = field(default_factory=list)
    new: list[Finding] = field(default_factory=list)
    regressions: list[Finding] = field(default_factory=list)
    unchecked: list[Finding] = field(default_factory=list)
    accepted: list[Finding] = field(default_factory=list)
    fixed: list[Fixed] = field(default_factory=list)
    not_run: int = 0  # baseline fingerprints this run did not issue
    notes: list[str] = field(default_factory=list)
    baseline_path: Path = DEFAULT_BASELINE_PATH
    baseline_existed: bool = False
    baseline_updated: bool = False
    max_repeats: int = DEFAULT_MAX_REPEATS
    fail_on: str = DEFAULT_FAIL_ON
    explain_target: str | None = None  # shown redacted

    def fails(self, finding: Finding) -> bool:
        """Whether a new finding or regression of this severity fails the gate."""
        return SEVERITY_RANK.get(finding.severity, 2) >= SEVERITY_RANK[self.fail_on]

    @property
    def failing(self) -> list[Finding]:
        """New findings and regressions at ``fail_on`` or above: what makes the gate exit 1."""
        return [f for f in (*self.new, *self.regressions) if self.fails(f)]

    @property
    def below(self) -> list[Finding]:
        """New findings and regressions below ``fail_on``: reported, never failing."""
        return [f for f in (*self.new, *self.regressions) if not self.fails(f)]

    @property
    def exit_code(self) -> int:
        if self.baseline_updated:  # everything found is accepted now
            return 0
        if self.failing:
            return 1
        if self.unchecked:
            return 2
        return 0

    def query(self, fp: str) -> QueryResult | None:
        for q in self.queries:
            if q.fingerprint == fp:
                return q
        return None


def run_check(
    run: GateRun,
    *,
    explain_dsn: str | None = None,
    baseline_path: str | os.PathLike[str] = DEFAULT_BASELINE_PATH,
    max_repeats: int = DEFAULT_MAX_REPEATS,
    update_baseline: bool = False,
    source_paths: Sequence[str | os.PathLike[str]] = (),
    statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS,
    on_progress: Callable[[int, int], None] | None = None,
    fail_on: str = DEFAULT_FAIL_ON,
) -> CheckReport:
    """Check ``run`` and compare it with the baseline; with ``update_baseline`` write a baseline
    that accepts the current state. Raises GateInputError when the gate cannot check at all.
    ``on_progress(done, total)`` hears about each statement checked (EXPLAIN takes time)."""
    if max_repeats < 1:
        raise GateInputError(f"--max-repeats must be 1 or more, not {max_repeats}")
    if fail_on not in FAIL_ON:
        raise GateInputError(f"--fail-on must be one of {', '.join(FAIL_ON)}, not {fail_on!r}")
    baseline = GateBaseline.load(baseline_path)
    explicit = _explicit_target(explain_dsn) if explain_dsn else None
    report = CheckReport(
        baseline_path=Path(baseline_path),
        baseline_existed=baseline.exists,
        max_repeats=max_repeats,
        fail_on=fail_on,
        explain_target=redact(explicit.target) if explicit else None,
    )
    with ExplainSessions(
        statement_timeout_ms=statement_timeout_ms, functions=run.functions
    ) as explainer:
        if explicit is not None:
            explainer.probe(explicit)  # unreachable --explain-dsn: GateInputError, exit 2
        # BEGIN, SET, PRAGMA, DDL: nothing to lint, plan or count
        todo = [s for s in run.statements.values() if is_plannable(s.normalized)]
        for done, stmt in enumerate(sorted(todo, key=lambda s: s.fingerprint), start=1):
            report.queries.append(check_statement(run, stmt, explicit, explainer, max_repeats))
            if on_progress is not None:
                on_progress(done, len(todo))
    report.queries.extend(_check_sources(source_paths, _source_dialect(run)))
    _compare(report, baseline, max_repeats)
    for key, note in NOT_CHECKABLE.items():
        count = sum(1 for q in report.queries if q.not_checkable == key)
        if count:
            report.notes.append(f"{count} statement(s) {note}")
    if update_baseline:
        _baseline_of(report).save(baseline_path)
        report.baseline_updated = True
    return report


def _explicit_target(dsn: str) -> ExplainTarget:
    if is_postgres_url(dsn):
        return ExplainTarget("postgres", dsn, explicit=True)
    path = Path(dsn)
    if not path.is_file():
        raise GateInputError(
            f"--explain-dsn {dsn}: neither a PostgreSQL DSN nor an existing SQLite file"
        )
    return ExplainTarget("sqlite", str(path.resolve()), explicit=True)


def _check_sources(paths: Sequence[str | os.PathLike[str]], dialect: str) -> list[QueryResult]:
    """Lint the SQL found in the source tree (``--source``), one result per fingerprint, each
    finding at its own line (the same statement may appear in several places)."""
    if not paths:
        return []
    from querywatch.sql.source_scan import scan_paths

    by_fp: dict[str, QueryResult] = {}
    for f in scan_paths([str(p) for p in paths], dialect):
        if f.fingerprint:
            fp = f.fingerprint
        elif f.sql:
            fp = fingerprint(f.sql, dialect).id
        else:  # a file that could not be read at all
            fp = f"file:{f.location.path if f.location else '?'}"
        q = by_fp.get(fp)
        if q is None:
            q = by_fp[fp] = QueryResult(fp, f.sql or "", dialect, origin="source")
        if f.location is not None:
            site = CallSite(f.location.path, f.location.line, f.location.function or "")
            if all(s != site for s, _n in q.sites):
                q.sites.append((site, 1))
        if all((g.rule, g.location) != (f.rule, f.location) for g in q.findings):
            q.findings.append(replace(f, fingerprint=fp))
    for q in by_fp.values():
        q.findings.sort(key=lambda f: (f.rule, str(f.location)))
    return sorted(by_fp.values(), key=lambda q: q.fingerprint)


def _source_dialect(run: GateRun) -> str:
    """The dialect the tests spoke most (source SQL is read in it); PostgreSQL by default."""
    counts: dict[str, int] = {}
    for stmt in run.statements.values():
        counts[stmt.dialect] = counts.get(stmt.dialect, 0) + 1
    return max(sorted(counts), key=lambda d: counts[d]) if counts else "postgres"


def _compare(report: CheckReport, baseline: GateBaseline, max_repeats: int) -> None:
    seen: set[str] = set()
    for q in report.queries:
        seen.add(q.fingerprint)
        entry = baseline.entries.get(q.fingerprint)
        accepted = set(entry.accepted) if entry else set()
        for f in q.findings:
            if f.rule in accepted:
                report.accepted.append(f)
            elif f.rule in UNCHECKED_RULES:
                report.unchecked.append(f)
            else:
                report.new.append(f)
        current = {f.rule for f in q.findings}
        if entry is not None:
            if q.explained or q.origin == "source":  # else plan findings were not looked for
                for rule in sorted(accepted - current):
                    report.fixed.append(Fixed(q.fingerprint, q.normalized, rule))
            report.regressions.extend(_regressions(q, entry, max_repeats))
    report.not_run = len(set(baseline.entries) - seen)


def _regressions(q: QueryResult, entry: BaselineEntry, max_repeats: int) -> list[Finding]:
    out = []
    where = q.location
    sig = q.signature
    # A plan cheaper than this costs too little to matter on any database; on tiny test tables
    # PostgreSQL flips between an index and a full scan as their statistics come and go.
    material = sig is not None and (sig.cost is None or sig.cost >= REGRESSION_MIN_COST)
    before, after = entry.cost_class, None if sig is None else sig.cost_class
    if material and before is not None and after is not None and after > before:
        cost = sig.cost if sig is not None and sig.cost is not None else 0.0
        out.append(
            Finding(
                COST_REGRESSION,
                "error",
                f"estimated cost rose from class {before} (~1e{before}) to class {after}"
                f" (cost {cost:,.0f})",
                "look at the plan (querywatch explain) for the new full scan, sort or join;"
                " add the index it needs or restore the previous query",
                {"before": before, "after": after, "cost": cost},
                q.fingerprint,
                q.normalized,
                where,
            )
        )
    if (
        material
        and sig is not None
        and entry.plan_shape is not None
        and sig.shape != entry.plan_shape
    ):
        worse = worse_access(entry.access, sig.access)
        if worse:
            what = "; ".join(f"{rel}: {was} -> {now}" for rel, was, now in worse)
            out.append(
                Finding(
                    PLAN_REGRESSION,
                    "error",
                    f"the plan changed and reads {what}",
                    "restore the index use: check the WHERE clause still matches an index (no"
                    " function or cast around the column) and that the index exists",
                    {"changes": [list(w) for w in worse]},
                    q.fingerprint,
                    q.normalized,
                    where,
                )
            )
    limit = max(max_repeats, entry.calls_per_test)
    if q.max_calls > limit and N_PLUS_ONE in entry.accepted:
        out.append(
            Finding(
                CALLS_REGRESSION,
                "warning",
                f"{q.max_calls_test} runs this statement {q.max_calls} times; the baseline"
                f" accepted {entry.calls_per_test}",
                "batch the statement (one query for all rows) instead of one per row",
                {"before": entry.calls_per_test, "after": q.max_calls, "test": q.max_calls_test},
                q.fingerprint,
                q.normalized,
                where,
            )
        )
    return out


def _baseline_of(report: CheckReport) -> GateBaseline:
    baseline = GateBaseline()
    for q in report.queries:
        sig = q.signature
        baseline.entries[q.fingerprint] = BaselineEntry(
            normalized=q.normalized,
            dialect=q.dialect,
            plan_shape=sig.shape if sig else None,
            access=dict(sig.access) if sig else {},
            cost_class=cost_class(sig.cost) if sig else None,
            calls_per_test=q.max_calls,
            accepted=sorted({f.rule for f in q.findings}),
        )
    return baseline
