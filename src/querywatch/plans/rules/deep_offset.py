"""`deep-offset`: OFFSET n makes the database produce and throw away n rows for every page."""

from __future__ import annotations

from querywatch.findings import Finding, Rule
from querywatch.plans.catalog import Catalog
from querywatch.plans.model import Plan, PlanNode
from querywatch.plans.policy import PlanPolicy
from querywatch.plans.rules._base import (
    PlanCheck,
    PlanContext,
    fmt_rows,
    rnd,
)


def check(ctx: PlanContext) -> list[Finding]:
    return _check(ctx.plan, ctx.catalog, ctx.policy)


def _check(plan: Plan, catalog: Catalog, policy: PlanPolicy) -> list[Finding]:
    skipped: float | None = None
    node: PlanNode | None = next((n for n in plan.nodes() if n.node_type == "Limit"), None)
    source = "estimated"
    if node is not None and node.analyzed and node.children:
        child_rows = node.children[0].actual_rows_all
        if child_rows is not None and node.actual_rows is not None:
            skipped = max(child_rows - node.actual_rows, 0.0)
            source = "actual"
    elif plan.offset:
        if node is not None and node.children and node.children[0].est_rows_all is not None:
            skipped = min(float(plan.offset), node.children[0].est_rows_all)
        else:
            sizes = [
                (catalog.for_node(s).rows or 0)  # type: ignore[union-attr]
                for s in plan.scans()
                if catalog.for_node(s) is not None
            ]
            skipped = min(float(plan.offset), max(sizes)) if sizes else None
    if skipped is None or skipped < policy.deep_offset_rows:
        return []
    offset_text = f"OFFSET {plan.offset:,}" if plan.offset else "the OFFSET"
    return [
        Finding(
            rule="deep-offset",
            severity=RULE.severity,
            message=(
                f"{offset_text} makes the database produce and discard {fmt_rows(skipped)} rows "
                "for every page"
            ),
            fix=(
                "use keyset pagination: remember the last row's sort key and ask for "
                "WHERE (sort key) > (last seen) ORDER BY sort key LIMIT n"
            ),
            evidence={
                "node": node.node_type if node is not None else None,
                "relation": None,
                "rows": rnd(skipped),
                "rows_source": source,
                "cost": node.total_cost if node is not None else None,
                "offset": plan.offset,
                "skipped_rows": rnd(skipped),
            },
        )
    ]


RULE: Rule[PlanCheck] = Rule(
    "deep-offset",
    "warning",
    "OFFSET makes the database produce and discard many rows per page.",
    check,
)
