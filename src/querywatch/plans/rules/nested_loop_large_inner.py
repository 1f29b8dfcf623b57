"""`nested-loop-large-inner`: A nested loop that reads a large relation once per outer row."""

from __future__ import annotations

from collections.abc import Iterator

from querywatch.findings import Finding, Rule
from querywatch.plans.catalog import Catalog, RelationInfo
from querywatch.plans.model import Plan, PlanNode
from querywatch.plans.policy import PlanPolicy
from querywatch.plans.predicates import (
    parse_condition,
)
from querywatch.plans.rules._base import (
    PlanCheck,
    PlanContext,
    ddl,
    evidence,
    fmt_rows,
    rel_name,
    rnd,
)
from querywatch.plans.rules._work import Work


def check(ctx: PlanContext) -> list[Finding]:
    return _check(ctx.plan, ctx.catalog, ctx.policy, ctx.work)


_PASS_THROUGH = ("Materialize", "Memoize", "Hash", "Sort", "Gather", "Gather Merge", "Result")


def _check(plan: Plan, catalog: Catalog, policy: PlanPolicy, work: Work) -> list[Finding]:
    out: list[Finding] = []
    for node in plan.nodes():
        if node.node_type != "Nested Loop" or len(node.children) != 2:
            continue
        outer, inner = node.children
        for scan, materialized in _inner_scans(inner):
            info = catalog.for_node(scan)
            if not policy.is_large(info) or work.guessed(scan):
                continue  # small, or loops that rest on a planner default
            assert info is not None
            loops, per_loop = _loops(work, outer, scan, materialized)
            if loops < 2:
                continue
            total = loops * per_loop
            if total < policy.nested_loop_inner_rows:
                continue
            key = _inner_join_key(node, scan, plan)
            early = " (as far as the LIMIT above lets it run)" if work.stopped_early(node) else ""
            out.append(
                Finding(
                    rule="nested-loop-large-inner",
                    severity=RULE.severity,
                    message=(
                        f"Nested Loop runs {fmt_rows(loops)} times{early} over {scan.node_type} "
                        f"on {rel_name(scan)} ({fmt_rows(per_loop)} rows each): "
                        f"{fmt_rows(total)} rows read"
                    ),
                    fix=_fix(scan, key, info, plan),
                    evidence=evidence(
                        scan,
                        info,
                        loops=rnd(loops),
                        inner_rows_per_loop=rnd(per_loop),
                        inner_rows_total=rnd(total),
                        join_cost=node.total_cost,
                        join_key=key,
                        limit_fraction=rnd(work.pulled_fraction(node))
                        if work.stopped_early(node)
                        else None,
                    ),
                )
            )
    return out


def _loops(
    work: Work, outer: PlanNode, scan: PlanNode, materialized: PlanNode | None
) -> tuple[float, float]:
    """(loops, rows read per loop) of the inner side: actual figures with ANALYZE, else the work
    estimate, which runs the loop only as often as a LIMIT above it lets it."""
    if scan.actual_loops is not None:
        loops = scan.actual_loops if not materialized else (outer.actual_rows_all or 0)
        if materialized is not None:
            return loops, materialized.rows_all or 0
        return loops, (scan.rows_all or 0) + (scan.rows_removed_by_filter or 0)
    if materialized is not None:  # rows re-read from the materialized copy on every loop
        loops = work.executions(materialized)
        return loops, work.rows_per_execution(materialized) or 0
    loops = work.executions(scan)
    read = work.rows_read(scan) or 0
    return loops, read / loops if loops else 0


def _fix(scan: PlanNode, key: str | None, info: RelationInfo, plan: Plan) -> str:
    if key and info.index_leading_with(key) is None:
        return f"give each loop an index lookup: {ddl(scan, [key], plan.dialect)}"
    if key:
        return (
            "each loop is already an index lookup: the number of loops is the cost; narrow the "
            "outer side before the join, or check the outer row estimate (ANALYZE) so the "
            "planner can pick a hash join"
        )
    return (
        "give the inner side an index on its join key, or check the outer row estimate "
        "(ANALYZE) so the planner can pick a hash join"
    )


def _inner_scans(inner: PlanNode) -> Iterator[tuple[PlanNode, PlanNode | None]]:
    """Scans on the inner side (through pass-through nodes); with the Materialize above, if any."""
    stack: list[tuple[PlanNode, PlanNode | None]] = [(inner, None)]
    while stack:
        node, mat = stack.pop()
        if node.is_scan:
            yield node, mat
            continue
        if node.node_type in _PASS_THROUGH or node.node_type == "Append":
            for child in node.children:
                if child.parent_relationship in ("SubPlan", "InitPlan"):
                    continue
                is_mat = node.node_type in ("Materialize", "Memoize", "Hash")
                stack.append((child, node if is_mat and mat is None else mat))


def _inner_join_key(join: PlanNode, scan: PlanNode, plan: Plan) -> str | None:
    mine = {scan.alias, scan.relation}
    texts = [t for t in (join.join_filter, scan.filter, scan.index_cond) if t]
    for text in texts:
        for pred in parse_condition(text, plan.dialect):
            if pred.kind != "join":
                continue
            if pred.qualifier in mine:
                return pred.column
            if pred.other_qualifier in mine and pred.other_column:
                return pred.other_column
    return None


RULE: Rule[PlanCheck] = Rule(
    "nested-loop-large-inner",
    "error",
    "A nested loop reads a large relation once per outer row.",
    check,
)
