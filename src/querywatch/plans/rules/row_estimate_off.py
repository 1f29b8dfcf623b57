"""`row-estimate-off`: estimated rows off by 100x or more (needs EXPLAIN ANALYZE): the plan was
chosen blind."""

from __future__ import annotations

from querywatch.findings import Finding, Rule
from querywatch.plans.catalog import Catalog, RelationInfo
from querywatch.plans.model import Plan, PlanNode
from querywatch.plans.policy import PlanPolicy
from querywatch.plans.predicates import (
    parse_condition,
    redact_condition,
)
from querywatch.plans.rules._base import (
    PlanCheck,
    PlanContext,
    fmt_rows,
    own,
    rel_name,
    rnd,
)


def check(ctx: PlanContext) -> list[Finding]:
    return _check(ctx.plan, ctx.catalog, ctx.policy)


def _check(plan: Plan, catalog: Catalog, policy: PlanPolicy) -> list[Finding]:
    if not plan.analyzed:
        return []
    flagged: list[tuple[PlanNode, float, float, float]] = []
    for node in plan.nodes():
        if node.est_rows_all is None or node.actual_rows_all is None or not node.actual_loops:
            continue
        # Per execution, all parallel workers together; a nested loop's inner side runs `loops`
        # executions (a parallel node's loops are its workers, already summed).
        loops = 1.0 if node.parallel_aware else node.actual_loops
        est = max(node.est_rows_all, 1.0)
        act = max(node.actual_rows_all, 1.0)
        if max(est, act) * loops < policy.misestimate_min_rows:
            continue
        ratio = max(est, act) / min(est, act)
        if ratio < policy.misestimate_factor:
            continue
        if est > act and not _ran_to_completion(node, catalog):
            continue  # a node stopped early (LIMIT, semi join, empty other side) returns fewer
        flagged.append((node, est, act, ratio))
    flagged_ids = {id(n) for n, *_ in flagged}
    out: list[Finding] = []
    for node, est, act, ratio in flagged:
        if any(id(d) in flagged_ids for d in node.walk() if d is not node):
            continue  # report where the error starts, not every node it propagates to
        scans = [s for s in node.walk() if s.is_scan]
        target = scans[0] if len(scans) == 1 else None
        info = catalog.for_node(target) if target is not None else None
        direction = "under" if act > est else "over"
        out.append(
            Finding(
                rule="row-estimate-off",
                severity=RULE.severity,
                message=(
                    f"{node.label()} estimated {fmt_rows(est)} rows but returned {fmt_rows(act)} "
                    f"({ratio:,.0f}x {direction}estimate)"
                ),
                fix=_estimate_fix(target, info, plan),
                evidence={
                    "node": node.node_type,
                    "relation": rel_name(target) if target is not None else None,
                    "rows": rnd(act),
                    "rows_source": "actual",
                    "estimated_rows": rnd(est),
                    "ratio": round(ratio, 1),
                    "loops": rnd(node.actual_loops),
                    "cost": node.total_cost,
                    "table_rows": rnd(info.rows) if info is not None else None,
                    "predicate": redact_condition(
                        (target.filter or target.index_cond) if target is not None else None,
                        plan.dialect,
                    ),
                },
            )
        )
    return out


def _ran_to_completion(node: PlanNode, catalog: Catalog) -> bool:
    """A scan that read its whole relation: its low actual count is real, not an early stop."""
    if node.node_type != "Seq Scan":
        return False
    info = catalog.for_node(node)
    if info is None or not info.rows or node.actual_rows is None or not node.actual_loops:
        return False
    read = (node.actual_rows + (node.rows_removed_by_filter or 0)) * node.actual_loops
    return read >= 0.9 * info.rows


def _estimate_fix(target: PlanNode | None, info: RelationInfo | None, plan: Plan) -> str:
    if target is None or info is None:
        return "ANALYZE the tables involved; if the estimate stays wrong, add extended statistics"
    name = rel_name(target)
    if (
        info.reltuples
        and info.live_rows
        and max(info.reltuples, info.live_rows) > 2 * min(info.reltuples, info.live_rows)
    ):
        return f"statistics are stale: ANALYZE {name}"
    columns = list(
        dict.fromkeys(p.column for p in own(parse_condition(target.filter, plan.dialect), target))
    )
    if len(columns) >= 2:
        stat = f"stx_{target.relation}_{'_'.join(columns)}"[:63]
        return (
            f"the filtered columns are correlated: CREATE STATISTICS {stat} (dependencies, mcv) "
            f"ON {', '.join(columns)} FROM {name}; ANALYZE {name}"
        )
    if columns:
        return (
            f"raise the statistics target: ALTER TABLE {name} ALTER COLUMN {columns[0]} "
            f"SET STATISTICS 1000; ANALYZE {name}"
        )
    return f"ANALYZE {name}"


RULE: Rule[PlanCheck] = Rule(
    "row-estimate-off",
    "warning",
    "Estimated rows off by 100x or more (EXPLAIN ANALYZE): the plan was chosen blind.",
    check,
)
