"""`subplan-per-row`: a correlated subquery (a SubPlan) runs once per outer row and, over all
its runs, reads a large number of rows. ``(SELECT count(*) FROM big b WHERE b.k = a.k)`` in a
select list scans ``big`` again for every row of ``a``; a join (with GROUP BY) or EXISTS reads it
once, and an index on the correlation key turns each run into a lookup."""

from __future__ import annotations

from querywatch.findings import Finding, Rule
from querywatch.plans.model import PlanNode
from querywatch.plans.predicates import parse_condition
from querywatch.plans.rules._base import (
    PlanCheck,
    PlanContext,
    aliases_in,
    ddl,
    fmt_rows,
    negated_subplans,
    rel_name,
    work_evidence,
)
from querywatch.plans.rules._work import reads_everything, scans_below


def check(ctx: PlanContext) -> list[Finding]:
    plan, policy, work = ctx.plan, ctx.policy, ctx.work
    negated = negated_subplans(plan)
    out: list[Finding] = []
    for node in plan.nodes():
        if node.parent_relationship != "SubPlan" or work.is_hashed(node):
            continue
        name = str(node.extra.get("Subplan Name") or "SubPlan")
        if name in negated:
            continue  # NOT IN (subquery): not-in-subquery says it with the right fix
        runs = work.executions(node)
        read = work.read_below(node)
        if runs < 2 or read < policy.nested_loop_inner_rows:
            continue
        parent = work.parent(node)
        scan, key = _correlation(node)
        out.append(
            Finding(
                rule=RULE.id,
                severity=RULE.severity,
                message=(
                    f"{name} (a correlated subquery) runs {fmt_rows(runs)} times, once per row "
                    f"of {parent.label() if parent is not None else 'its parent'}, reading "
                    f"{fmt_rows(read / runs)} rows each: {fmt_rows(read)} rows read in all"
                ),
                fix=_fix(ctx, scan, key),
                evidence=work_evidence(
                    ctx,
                    node,
                    subplan=name,
                    rows_read=read,
                    rows_read_per_run=read / runs,
                    relation=rel_name(scan) if scan is not None and scan.relation else None,
                    correlation_key=key,
                ),
            )
        )
    return out


def _correlation(subplan: PlanNode) -> tuple[PlanNode | None, str | None]:
    """The scan inside the SubPlan compared with an outer column, and its compared column."""
    inside = aliases_in(subplan, subplans=True)
    first: PlanNode | None = None
    for scan in scans_below(subplan):
        first = first or scan
        mine = {scan.alias, scan.relation}
        for text in (scan.index_cond, scan.filter, scan.recheck_cond):
            for pred in parse_condition(text, "postgres"):
                if pred.kind != "join":
                    continue
                sides: list[tuple[str | None, str | None, str | None]] = [
                    (pred.qualifier, pred.column, pred.other_qualifier),
                    (pred.other_qualifier, pred.other_column, pred.qualifier),
                ]
                for qual, col, other in sides:
                    if qual in mine and col and other not in inside:
                        return scan, col
    return first, None


def _fix(ctx: PlanContext, scan: PlanNode | None, key: str | None) -> str:
    rewrite = "rewrite it as a JOIN (with GROUP BY for an aggregate) or EXISTS, read once"
    if scan is None or key is None or scan.relation is None:
        return rewrite
    info = ctx.catalog.for_node(scan)
    if reads_everything(scan) and (info is None or info.index_leading_with(key) is None):
        return f"{rewrite}; or index the correlation key: {ddl(scan, [key], ctx.plan.dialect)}"
    return rewrite


RULE: Rule[PlanCheck] = Rule(
    "subplan-per-row",
    "error",
    "A correlated subquery runs once per outer row and reads many rows in all.",
    check,
)
