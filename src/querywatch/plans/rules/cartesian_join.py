"""`cartesian-join`: a Nested Loop pairs every outer row with every inner row, with no join
condition narrowing the inner side (no index lookup on an outer value, no hash or merge key). With
no Join Filter it is a cartesian product; with one, every pair is still built and tested. The work
is outer rows × inner rows, which grows with the square of the data."""

from __future__ import annotations

from querywatch.findings import Finding, Rule
from querywatch.plans.model import PlanNode
from querywatch.plans.predicates import redact_condition
from querywatch.plans.rules._base import (
    PlanCheck,
    PlanContext,
    aliases_in,
    fmt_rows,
    mentions_alias,
    work_evidence,
)


def check(ctx: PlanContext) -> list[Finding]:
    plan, policy, work = ctx.plan, ctx.policy, ctx.work
    out: list[Finding] = []
    for node in plan.nodes():
        if node.node_type != "Nested Loop" or node.never_executed:
            continue
        sides = [c for c in node.children if c.parent_relationship not in ("SubPlan", "InitPlan")]
        if len(sides) != 2:
            continue
        outer, inner = sides
        if _parameterized(inner, aliases_in(outer)):
            continue  # each loop looks up the inner rows matching the outer row
        outer_rows = work.rows_out(outer)
        per_loop = work.rows_per_execution(inner)
        if outer_rows is None or per_loop is None or min(outer_rows, per_loop) < 2:
            continue
        pairs = outer_rows * per_loop
        if pairs < policy.nested_loop_inner_rows:
            continue
        condition = redact_condition(node.join_filter, plan.dialect)
        what = (
            f"tests `{condition}` on every pair"
            if condition
            else "has no join condition (a cartesian product)"
        )
        out.append(
            Finding(
                rule=RULE.id,
                severity=RULE.severity,
                message=(
                    f"Nested Loop {what}: {fmt_rows(outer_rows)} outer × {fmt_rows(per_loop)} "
                    f"inner rows = {fmt_rows(pairs)} row pairs"
                ),
                fix=(
                    "join on a key (JOIN … ON a.key = b.key) so the database can hash, merge or "
                    "look up matching rows; for a range condition, index the inner side's range "
                    "column"
                    if condition
                    else "add the missing join condition (JOIN … ON a.key = b.key); if every "
                    "combination is really wanted, build it once, not per request"
                ),
                evidence=work_evidence(
                    ctx,
                    node,
                    outer_rows=outer_rows,
                    inner_rows_per_loop=per_loop,
                    row_pairs=pairs,
                    join_filter=condition,
                ),
            )
        )
    return out


def _parameterized(inner: PlanNode, outer_aliases: set[str]) -> bool:
    """Whether the inner side reads rows chosen by the outer row (a parameter in a condition)."""
    if not outer_aliases:
        return False
    for node in inner.walk():
        for text in node.conditions():
            if mentions_alias(text, outer_aliases - aliases_in(inner, subplans=True)):
                return True
    return False


RULE: Rule[PlanCheck] = Rule(
    "cartesian-join",
    "error",
    "A nested loop builds every pair of outer and inner rows (no join key narrows the inner side).",
    check,
)
