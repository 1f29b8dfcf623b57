"""`large-aggregate`: an aggregate reads a large number of rows to return a few, on every call.
``SELECT count(*) FROM big`` or a dashboard's ``sum(…) … GROUP BY status`` recomputes the same
figure from millions of rows per request; a summary kept up to date, or an index the aggregate can
read alone, makes it cheap."""

from __future__ import annotations

from querywatch.findings import Finding, Rule
from querywatch.plans.model import PlanNode
from querywatch.plans.rules._base import (
    PlanCheck,
    PlanContext,
    advice_for,
    fmt_rows,
    only_plain_columns,
    rel_name,
    single_scan,
    work_evidence,
)


def check(ctx: PlanContext) -> list[Finding]:
    plan, policy, work = ctx.plan, ctx.policy, ctx.work
    out: list[Finding] = []
    flagged: set[int] = set()
    for node in plan.nodes():
        if not _aggregates(node) or id(node) in flagged or _in_subplan(node, ctx):
            continue  # a per-row subquery's aggregate is subplan-per-row's business
        runs = max(work.executions(node), 1.0)
        read = work.read_below(node, subplans=False) / runs
        returned = work.rows_per_execution(node)
        if returned is None or read < policy.large_table_rows:
            continue
        if returned > policy.few_rows and returned * policy.work_ratio > read:
            continue  # many groups out of the rows read: a report, not a figure
        flagged.update(id(n) for n in node.walk())
        scan = single_scan(node)
        out.append(
            Finding(
                rule=RULE.id,
                severity=RULE.severity,
                message=(
                    f"{node.label()} reads {fmt_rows(read)} rows to return {fmt_rows(returned)} "
                    "on every call"
                ),
                fix=_fix(ctx, scan),
                evidence=work_evidence(
                    ctx,
                    node,
                    rows_read=read,
                    returned_rows=returned,
                    relation=rel_name(scan) if scan is not None else None,
                ),
            )
        )
    return out


def _aggregates(node: PlanNode) -> bool:
    if node.extra.get("Partial Mode") == "Partial":
        return False
    if node.node_type not in ("Aggregate", "Group", "WindowAgg"):
        return False
    return only_plain_columns(node) is not True  # a pure DISTINCT is join-fanout's business


def _in_subplan(node: PlanNode, ctx: PlanContext) -> bool:
    current: PlanNode | None = node
    while current is not None:
        if current.parent_relationship == "SubPlan":
            return True
        current = ctx.work.parent(current)
    return False


def _fix(ctx: PlanContext, scan: PlanNode | None) -> str:
    summary = (
        "keep the result in a summary table or materialized view refreshed on write or on a "
        "schedule (or cache it), instead of recomputing it per request"
    )
    if scan is None:
        return summary
    validated = advice_for(ctx, scan.relation)
    if validated is not None:
        return f"an index the aggregate can use ({validated[1]}): {validated[0]}; or {summary}"
    return (
        f"{summary}; a covering index on the filtered and aggregated columns of "
        f"{rel_name(scan)} lets an index-only scan read less"
    )


RULE: Rule[PlanCheck] = Rule(
    "large-aggregate",
    "warning",
    "An aggregate reads a large number of rows to return a few, on every call.",
    check,
)
