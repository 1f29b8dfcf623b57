"""One statement, fully inspected: its plan, the rules' findings and index advice.

This is what `querywatch explain` prints and what the CI gate calls per captured statement; both
go through :func:`inspect_query` so they can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from querywatch.findings import Finding
from querywatch.plans.advice import Advice, advise
from querywatch.plans.catalog import Catalog
from querywatch.plans.explain import Explainer
from querywatch.plans.model import Plan
from querywatch.plans.rules import PlanPolicy, check_plan


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
    statement_timeout_ms: int = 5000,
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
    findings = check_plan(plan, catalog, policy)
    advice = None
    if with_advice:
        # Advice compares estimated total costs; an analyzed plan carries the same estimates.
        advice = advise(explainer, sql, plan=plan, policy=policy)
    return Report(
        target=explainer.display_target,
        plan=plan,
        catalog=catalog,
        findings=findings,
        advice=advice,
    )
