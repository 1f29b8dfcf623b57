"""`not-in-subquery`: ``x NOT IN (SELECT …)`` over a large input. PostgreSQL cannot turn NOT IN
into an anti-join (one NULL from the subquery makes the whole test unknown), so it keeps a SubPlan:
hashed, it loads the whole subquery result into memory; too big for ``work_mem``, it rescans it
for every outer row. ``NOT EXISTS`` means what is almost always wanted and plans as an anti-join."""

from __future__ import annotations

from querywatch.findings import Finding, Rule
from querywatch.plans.rules._base import (
    PlanCheck,
    PlanContext,
    fmt_rows,
    negated_subplans,
    work_evidence,
)


def check(ctx: PlanContext) -> list[Finding]:
    plan, policy, work = ctx.plan, ctx.policy, ctx.work
    negated = negated_subplans(plan)
    out: list[Finding] = []
    for node in plan.nodes():
        name = str(node.extra.get("Subplan Name") or "")
        if node.parent_relationship != "SubPlan" or name not in negated:
            continue
        hashed = work.is_hashed(node)
        read = work.read_below(node)
        runs = work.executions(node)
        if hashed and read < policy.large_table_rows:
            continue  # a small list, hashed once: cheap
        if not hashed and read < policy.nested_loop_inner_rows:
            continue
        how = (
            f"hashes all {fmt_rows(read)} rows the subquery returns"
            if hashed
            else f"rescans the subquery {fmt_rows(runs)} times ({fmt_rows(read)} rows read)"
        )
        tester = negated[name]
        out.append(
            Finding(
                rule=RULE.id,
                severity=RULE.severity,
                message=f"NOT IN (subquery) on {tester.label()}: {name} {how}",
                fix=(
                    "write NOT EXISTS (SELECT 1 FROM … WHERE inner.key = outer.key): it plans "
                    "as an anti-join and, unlike NOT IN, is not emptied by a NULL in the subquery"
                ),
                evidence=work_evidence(ctx, node, subplan=name, hashed=hashed, rows_read=read),
            )
        )
    return out


RULE: Rule[PlanCheck] = Rule(
    "not-in-subquery",
    "error",
    "NOT IN (subquery) over a large input: a hashed or per-row SubPlan instead of an anti-join.",
    check,
)
