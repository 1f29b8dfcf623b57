"""`limit-filter-clustered`: a LIMIT over an ordered index walk with a filter the index does not
serve, where the plan is cheap only because matches are assumed to be spread evenly along the
index order — and pg_stats says they are not independent of it.

PostgreSQL costs ``WHERE f = ? ORDER BY k LIMIT n`` over an index on ``k`` as reading
``n / selectivity(f)`` rows: the expected scan when matches are spread evenly. When ``f`` and ``k``
are correlated (both follow the table's physical order, as a status that changes with age does),
the matches sit together somewhere along ``k``: at the near end the walk stops at once, at the far
end it reads the whole index. Statistics cannot say which end; they can say that the estimate's
assumption does not hold and what the worst case costs. So this is advice (``info``), with the
index that makes the walk visit matching rows only. Plans with actual figures (ANALYZE) are judged
by the rows really read, by the other rules.
"""

from __future__ import annotations

import math

from querywatch.findings import Finding, Rule
from querywatch.plans.catalog import RelationInfo
from querywatch.plans.model import PlanNode
from querywatch.plans.predicates import parse_condition, redact_condition
from querywatch.plans.rules._base import (
    PlanCheck,
    PlanContext,
    ddl,
    fmt_rows,
    indexable,
    key_order,
    own,
    work_evidence,
)

# Nodes a LIMIT's early stop passes through unchanged (no sort, no join in between).
_STREAMING = ("Gather Merge", "Gather", "Result", "Subquery Scan", "Limit")

DEPENDENCE = 0.2
"""Correlation between the filter column and the index order (a lower bound, from each one's
correlation with the physical order) from which matches cannot be taken as spread evenly."""


def check(ctx: PlanContext) -> list[Finding]:
    plan, policy, work = ctx.plan, ctx.policy, ctx.work
    out: list[Finding] = []
    if plan.dialect != "postgres":
        return out
    for limit in plan.nodes():
        if limit.node_type != "Limit" or limit.analyzed:
            continue
        scan = _ordered_walk(limit)
        if scan is None or not work.stopped_early(scan):
            continue
        info = ctx.catalog.for_node(scan)
        expected, worst = work.rows_read(scan), work.worst_read(scan)
        if info is None or expected is None or worst is None:
            continue
        if worst < policy.large_table_rows or worst < expected * policy.work_ratio:
            continue  # the walk is short even to its end, or the LIMIT saves little
        order = order_column(scan, info)
        if order is None:
            continue
        dependent = dependent_filter(scan, info, order)
        if dependent is None:
            continue
        column, bound, c_filter, c_order = dependent
        preds = indexable(own(parse_condition(scan.filter, plan.dialect), scan))
        keys = [k for k in key_order(preds, info) if k != order] + [order]
        condition = redact_condition(scan.filter, plan.dialect)
        out.append(
            Finding(
                rule=RULE.id,
                severity=RULE.severity,
                message=(
                    f"LIMIT over {scan.label()} expects to read ~{fmt_rows(expected)} rows to "
                    f"find matches of `{condition}`, assuming they are spread evenly along "
                    f"{order}; pg_stats shows {column} follows the table's order as {order} "
                    f"does (correlation {c_filter:.2f} and {c_order:.2f}), so the matches may "
                    f"sit together at the far end: up to {fmt_rows(worst)} rows read"
                ),
                fix=(
                    "an index on the filter and order columns walks matching rows only, "
                    f"wherever they are: {ddl(scan, keys, plan.dialect)}"
                ),
                evidence=work_evidence(
                    ctx,
                    scan,
                    expected_rows_read=expected,
                    worst_rows_read=worst,
                    filter_column=column,
                    order_column=order,
                    filter_correlation=round(c_filter, 3),
                    order_correlation=round(c_order, 3),
                    dependence_at_least=round(bound, 3),
                ),
            )
        )
    return out


def _ordered_walk(limit: PlanNode) -> PlanNode | None:
    """The index walk that feeds the LIMIT in order: a full Index (Only) Scan with a filter,
    reached through nodes that pass rows on as they come."""
    node = limit
    while True:
        regular = [c for c in node.children if c.parent_relationship not in ("SubPlan", "InitPlan")]
        if len(regular) != 1:
            return None
        node = regular[0]
        if node.node_type in _STREAMING:
            continue
        if node.node_type in ("Index Scan", "Index Only Scan") and node.is_scan:
            return node if node.filter and not node.index_cond else None
        return None


def order_column(scan: PlanNode, info: RelationInfo) -> str | None:
    """The column an index walk returns rows in order of (its index's first key)."""
    index = next((i for i in info.indexes if i.name == scan.index_name), None)
    return index.leading_column if index is not None else None


def dependent_filter(
    scan: PlanNode, info: RelationInfo, order: str
) -> tuple[str, float, float, float] | None:
    """(column, lower bound of its correlation with ``order``, its and ``order``'s correlation
    with the physical order) of the filter column most tied to the index order, if any is."""
    order_info = info.columns.get(order)
    if order_info is None or order_info.correlation is None:
        return None
    c_order = order_info.correlation
    best: tuple[str, float, float, float] | None = None
    for pred in own(parse_condition(scan.filter), scan):
        col = info.columns.get(pred.column)
        if col is None or col.correlation is None or pred.column == order:
            continue
        a, b = abs(col.correlation), abs(c_order)
        # Two variables both correlated with a third are correlated with each other at least
        # this much (the bound of a 3x3 correlation matrix being positive semidefinite).
        bound = a * b - math.sqrt(max(0.0, (1 - a * a) * (1 - b * b)))
        if bound >= DEPENDENCE and (best is None or bound > best[1]):
            best = (pred.column, bound, col.correlation, c_order)
    return best


RULE: Rule[PlanCheck] = Rule(
    "limit-filter-clustered",
    "info",
    "A LIMIT over an index walk is cheap only if filter matches are spread evenly, and pg_stats "
    "says they are not independent of the index order.",
    check,
)
