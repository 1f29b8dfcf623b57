"""`index-would-help`: validated index advice makes the plan many times cheaper, and no other
rule has said what is wrong. A plan an index makes 100x cheaper is not "no findings", whatever
shape it has: HypoPG planned the statement again with the index and the planner's own cost fell
by ``PlanPolicy.index_verdict_factor`` or more."""

from __future__ import annotations

from querywatch.findings import Finding, Rule
from querywatch.plans.rules._base import PlanCheck, PlanContext


def check(ctx: PlanContext) -> list[Finding]:
    advice, policy = ctx.advice, ctx.policy
    if advice is None or not advice.validated:
        return []
    if any(f.severity in ("error", "warning") for f in ctx.found):
        return []  # a rule already names the problem (and its fix)
    best = None
    best_factor = 0.0
    for cand in advice.recommended:
        before, after = cand.cost_before, cand.cost_after
        if before is None or after is None or before < policy.index_verdict_min_cost:
            continue
        factor = before / max(after, 0.01)
        if factor > best_factor:
            best, best_factor = cand, factor
    if best is None or best_factor < policy.index_verdict_factor:
        return []
    where = f"{best.schema}.{best.table}" if best.schema else best.table
    return [
        Finding(
            rule=RULE.id,
            severity=RULE.severity,
            message=(
                f"an index on {where} ({', '.join(best.keys)}) makes this plan "
                f"{best_factor:,.0f}x cheaper: estimated cost {best.cost_before or 0:,.0f} → "
                f"{best.cost_after or 0:,.2f} (validated with HypoPG)"
            ),
            fix=f"add the index: {best.ddl}",
            evidence={
                "node": ctx.plan.root.node_type,
                "relation": where,
                "rows": None,
                "rows_source": "estimated",
                "cost": best.cost_before,
                "cost_after": best.cost_after,
                "factor": round(best_factor, 1),
                "columns": list(best.keys),
                "reasons": list(best.reasons),
            },
        )
    ]


RULE: Rule[PlanCheck] = Rule(
    "index-would-help",
    "error",
    "A validated index makes the plan many times cheaper (HypoPG), and no other rule fired.",
    check,
)
