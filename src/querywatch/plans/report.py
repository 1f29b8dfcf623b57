"""One statement, fully inspected: its plan, the rules' findings and index advice.

`querywatch explain` prints :func:`inspect_query`; the CI gate calls :func:`judge_plan` per
captured statement. Both feed validated index advice to the rules, so a plan an index makes many
times cheaper is a finding (``index-would-help``) in both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from querywatch.config import DEFAULT_STATEMENT_TIMEOUT_MS
from querywatch.findings import Finding
from querywatch.plans.advice import Advice, advise, candidates_for
from querywatch.plans.catalog import Catalog
from querywatch.plans.explain import Explainer
from querywatch.plans.model import Plan
from querywatch.plans.policy import PlanPolicy
from querywatch.plans.rules import FALLBACKS, check_plan


@dataclass(slots=True)
class Report:
    target: str  # redacted DSN or SQLite path
    plan: Plan
    catalog: Catalog
    findings: list[Finding]
    advice: Advice | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "dialect": self.plan.dialect,
            "sql": self.plan.sql,
            "plan": self.plan.as_dict(),
            "relations": self.catalog.as_dict(),
            "findings": [f.as_dict() for f in self.findings],
            "advice": None if self.advice is None else self.advice.as_dict(),
        }


def inspect_query(
    target: str | Explainer,
    sql: str,
    *,
    analyze: bool = False,
    with_advice: bool = True,
    policy: PlanPolicy | None = None,
    statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS,
) -> Report:
    """Explain ``sql`` on ``target``, check the plan, and (unless told not to) advise indexes."""
    if not isinstance(target, Explainer):
        with Explainer(target, statement_timeout_ms=statement_timeout_ms) as explainer:
            return _inspect(explainer, sql, analyze, with_advice, policy or PlanPolicy())
    return _inspect(target, sql, analyze, with_advice, policy or PlanPolicy())


def _inspect(
    explainer: Explainer, sql: str, analyze: bool, with_advice: bool, policy: PlanPolicy
) -> Report:
    plan = explainer.explain(sql, analyze=analyze)
    catalog = explainer.catalog(plan)
    advice = None
    if with_advice:
        # Advice compares estimated total costs; an analyzed plan carries the same estimates.
        advice = advise(explainer, sql, plan=plan, policy=policy)
    findings = check_plan(plan, catalog, policy, advice=advice)
    return Report(
        target=explainer.display_target,
        plan=plan,
        catalog=catalog,
        findings=findings,
        advice=advice,
    )


def judge_plan(
    explainer: Explainer, sql: str, plan: Plan, catalog: Catalog, policy: PlanPolicy | None = None
) -> list[Finding]:
    """The rules' findings on ``plan``, with index advice asked for only when it can change the
    verdict: a PostgreSQL plan costly enough (``index_verdict_min_cost``, in its worst case when a
    LIMIT or EXISTS may never stop early: ``Plan.worst_cost``) that no specific rule
    flagged (only a fallback such as ``heavy-read`` may have),
    with an index candidate to validate. Keeps the gate fast on the many cheap statements."""
    policy = policy or PlanPolicy()
    findings = check_plan(plan, catalog, policy)
    if (
        plan.dialect != "postgres"
        or max(plan.total_cost or 0, plan.worst_cost or 0) < policy.index_verdict_min_cost
        or any(f.severity in ("error", "warning") and f.rule not in FALLBACKS for f in findings)
        or not candidates_for(plan, catalog, policy)
    ):
        return findings
    advice = advise(explainer, sql, plan=plan, policy=policy)
    return check_plan(plan, catalog, policy, advice=advice)
