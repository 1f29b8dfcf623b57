"""`nested-loop-large-inner`: A nested loop that reads a large relation once per outer row."""

from __future__ import annotations

from collections.abc import Iterator

from querywatch.findings import Finding, Rule
from querywatch.plans.catalog import Catalog
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
            if scan.actual_loops is not None:
                loops = scan.actual_loops if not materialized else (outer.actual_rows_all or 0)
            else:
                loops = outer.rows_all or 0
            if loops < 2:
                continue
            if materialized is not None:
                per_loop = materialized.rows_all or 0
            elif scan.node_type == "Seq Scan":
                per_loop = info.rows or 0
            else:
                per_loop = (scan.rows_all or 0) + (scan.rows_removed_by_filter or 0)
            total = loops * per_loop
            if total < policy.nested_loop_inner_rows:
                continue
            key = _inner_join_key(node, scan, plan)
            fix = (
                f"give each loop an index lookup: {ddl(scan, [key], plan.dialect)}"
                if key
                else "give the inner side an index on its join key, or check the outer row "
                "estimate (ANALYZE) so the planner can pick a hash join"
            )
            out.append(
                Finding(
                    rule="nested-loop-large-inner",
                    severity=RULE.severity,
                    message=(
                        f"Nested Loop runs {fmt_rows(loops)} times over {scan.node_type} on "
                        f"{rel_name(scan)} ({fmt_rows(per_loop)} rows each): "
                        f"{fmt_rows(total)} rows read"
                    ),
                    fix=fix,
                    evidence=evidence(
                        scan,
                        info,
                        loops=rnd(loops),
                        inner_rows_per_loop=rnd(per_loop),
                        inner_rows_total=rnd(total),
                        join_cost=node.total_cost,
                        join_key=key,
                    ),
                )
            )
    return out


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
