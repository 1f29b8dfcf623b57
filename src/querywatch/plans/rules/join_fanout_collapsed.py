"""`join-fanout-collapsed`: a join multiplies rows and a DISTINCT or GROUP BY with no aggregate
collapses them again. ``SELECT DISTINCT c.* FROM c JOIN o ON …`` builds one row per (c, o) pair
only to throw the duplicates away; EXISTS (a semi-join) stops at the first match."""

from __future__ import annotations

from querywatch.findings import Finding, Rule
from querywatch.plans.model import PlanNode
from querywatch.plans.rules._base import (
    PlanCheck,
    PlanContext,
    first_below,
    fmt_rows,
    only_plain_columns,
    work_evidence,
)


def check(ctx: PlanContext) -> list[Finding]:
    plan, policy, work = ctx.plan, ctx.policy, ctx.work
    out: list[Finding] = []
    for node in plan.nodes():
        if not _dedupes(node):
            continue
        join = first_below(node, lambda n: n.is_join)
        if join is None:
            continue
        joined = work.rows_out(join)
        kept = work.rows_out(node)
        if joined is None or kept is None or joined < policy.large_table_rows:
            continue
        if kept * policy.fanout_factor > joined:
            continue
        out.append(
            Finding(
                rule=RULE.id,
                severity=RULE.severity,
                message=(
                    f"{join.label()} produces {fmt_rows(joined)} rows that {node.node_type} "
                    f"collapses to {fmt_rows(kept)} ({joined / max(kept, 1):,.0f}x fan-out, "
                    "thrown away again)"
                ),
                fix=(
                    "test the other table with EXISTS (SELECT 1 FROM … WHERE …) instead of "
                    "joining it and de-duplicating: a semi-join stops at the first match"
                ),
                evidence=work_evidence(ctx, node, joined_rows=joined, kept_rows=kept),
            )
        )
        break  # the outermost collapse tells the story
    return out


def _dedupes(node: PlanNode) -> bool:
    """A DISTINCT or a GROUP BY that computes nothing (plain columns out)."""
    if node.extra.get("Partial Mode") == "Partial":
        return False
    if node.node_type == "Unique":
        return True
    if node.node_type in ("Aggregate", "Group") and node.extra.get("Strategy") != "Plain":
        return only_plain_columns(node) is True
    return False


RULE: Rule[PlanCheck] = Rule(
    "join-fanout-collapsed",
    "warning",
    "A join fans rows out and a DISTINCT/GROUP BY collapses them again (use EXISTS).",
    check,
)
