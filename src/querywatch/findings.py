"""A finding: one problem a rule saw in a query, its plan or its use, and how to fix it.

SQL lint (``querywatch.sql.lint``), plan rules (``querywatch.plans.rules``) and the CI gate's N+1
check all speak this one type, so `querywatch explain`, `querywatch check`, the reports (terminal,
Markdown, JUnit XML, SARIF) and the postmortem print them the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")
"""Most to least severe. ``info`` is advice: it never fails the CI gate (SARIF level ``note``)."""

CheckT = TypeVar("CheckT", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class Rule(Generic[CheckT]):
    """One rule, plan or lint, registered the same way: a module named after the rule defines
    ``RULE = Rule(id, severity, summary, check)``, and its package lists the modules' rules in
    one ordered tuple (``querywatch.plans.rules.RULES``, ``querywatch.sql.rules.RULES``).

    ``id`` is the stable slug users suppress and baselines record; ``severity`` is stated here
    once and carried by every finding the check returns; ``summary`` is the line docs list.
    ``needs_plan`` marks a lint rule whose verdict depends on sizes and indexes the text cannot
    show: where the statement's plan was judged, the plan rules speak for it instead.
    """

    id: str
    severity: Severity
    summary: str
    check: CheckT
    needs_plan: bool = False


@dataclass(frozen=True, slots=True)
class Location:
    """Where a finding points in the application's source (1-based line and column)."""

    path: str
    line: int
    column: int = 1
    function: str | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True, slots=True)
class Finding:
    """``rule`` is a stable slug (``seq-scan-large-table``): the id users suppress with
    ``querywatch: ignore[rule]`` and the baseline file records. ``evidence`` holds the figures the
    rule judged by (node, relation, rows, cost, selectivity…), so a reader can check the verdict.
    """

    rule: str
    severity: Severity
    message: str  # one line: what is wrong, with the decisive figure
    fix: str  # one line: what to do (an index, a rewrite…)
    evidence: dict[str, Any] = field(default_factory=dict)
    fingerprint: str | None = None
    sql: str | None = None  # the normalized statement, never literal values
    location: Location | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "fix": self.fix,
            "evidence": dict(self.evidence),
            "fingerprint": self.fingerprint,
            "sql": self.sql,
            "location": None
            if self.location is None
            else {
                "path": self.location.path,
                "line": self.location.line,
                "column": self.location.column,
                "function": self.location.function,
            },
        }
