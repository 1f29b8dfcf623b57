"""`sort-large-for-few`: a sort (often a top-N heapsort under a LIMIT) reads a large input to
return a few rows. ``ORDER BY x DESC LIMIT 10`` on a 2M-row table sorts all 2M rows on every call;
an index on the sort key returns the first 10 in order and stops."""

from __future__ import annotations

import re

from querywatch.findings import Finding, Rule
from querywatch.plans.model import PlanNode
from querywatch.plans.predicates import parse_condition, redact_condition, statement_shape
from querywatch.plans.rules._base import (
    PlanCheck,
    PlanContext,
    advice_for,
    ancestors,
    ddl,
    fmt_rows,
    indexable,
    key_order,
    own,
    single_scan,
    work_evidence,
)

_DIRECTION = re.compile(r"\s+(ASC|DESC|NULLS (FIRST|LAST))\b", re.IGNORECASE)


def check(ctx: PlanContext) -> list[Finding]:
    plan, policy, work = ctx.plan, ctx.policy, ctx.work
    out: list[Finding] = []
    parents = plan.parents()
    for node in plan.nodes():
        if node.node_type != "Sort" or node.never_executed:
            continue
        inputs = [c for c in node.children if c.parent_relationship not in ("SubPlan", "InitPlan")]
        sorted_rows = work.rows_out(inputs[0]) if inputs else None
        scan = single_scan(node)
        if plan.dialect == "sqlite":
            sorted_rows, scan = _sqlite_input(ctx)
        returned = work.rows_out(node)
        limit = next((a for a in ancestors(node, parents) if a.node_type == "Limit"), None)
        if limit is not None and returned is not None:
            returned = min(returned, work.rows_out(limit) or returned)
        if plan.dialect == "sqlite":
            returned = float(plan.limit + (plan.offset or 0)) if plan.limit is not None else None
        if sorted_rows is None or returned is None or sorted_rows < policy.large_table_rows:
            continue
        if returned > policy.few_rows and returned * policy.work_ratio > sorted_rows:
            continue  # most of what is sorted is used: the sort is the job
        keys = ", ".join(redact_condition(k, plan.dialect) or "" for k in node.sort_keys)
        out.append(
            Finding(
                rule=RULE.id,
                severity=RULE.severity,
                message=(
                    f"{node.node_type} of {fmt_rows(sorted_rows)} rows"
                    f"{f' by {keys}' if keys else ''} to return {fmt_rows(returned)}: every call "
                    "reads and orders the whole input to keep the first few"
                ),
                fix=_fix(ctx, node, scan),
                evidence=work_evidence(
                    ctx,
                    node,
                    sorted_rows=sorted_rows,
                    returned_rows=returned,
                    sort_keys=[redact_condition(k, plan.dialect) for k in node.sort_keys] or None,
                    sort_method=node.sort_method,
                ),
            )
        )
    return out


def _sqlite_input(ctx: PlanContext) -> tuple[float | None, PlanNode | None]:
    """SQLite has no row estimates: a sort over one unfiltered full scan sorts the whole table."""
    scans = ctx.plan.scans()
    if len(scans) != 1 or scans[0].node_type != "Seq Scan" or scans[0].filter:
        return None, None
    info = ctx.catalog.for_node(scans[0])
    return (info.rows if info is not None else None), scans[0]


def _fix(ctx: PlanContext, sort: PlanNode, scan: PlanNode | None) -> str:
    if scan is None or scan.relation is None:
        return (
            "give the database a way to read rows already in order: an index on the sort key "
            "of the table that drives the join, or sort a smaller, filtered set"
        )
    validated = advice_for(ctx, scan.relation)
    if validated is not None:
        return f"an index that returns the rows in order ({validated[1]}): {validated[0]}"
    info = ctx.catalog.for_node(scan)
    columns: list[str] = []
    if ctx.plan.dialect == "sqlite":
        shape = statement_shape(ctx.plan.sql, "sqlite")
        columns = [c for _q, c, _d in shape.order_by] if shape is not None else []
    for key in sort.sort_keys if ctx.plan.dialect != "sqlite" else []:
        bare = _DIRECTION.sub("", key).strip()
        col = bare.split(".")[-1].strip('"')
        if not re.fullmatch(r"\w+", col):
            return (
                f"index the sort expression ({redact_condition(key, ctx.plan.dialect)}) so the "
                "first rows come in order, or precompute it in a column"
            )
        columns.append(col)
    filters = key_order(indexable(own(parse_condition(scan.filter, ctx.plan.dialect), scan)), info)
    keys = [*[c for c in filters if c not in columns], *columns]
    return (
        "an index on the filter and sort columns returns the first rows in order and stops "
        f"(add the selected columns with INCLUDE to make it covering): "
        f"{ddl(scan, keys, ctx.plan.dialect)}"
    )


RULE: Rule[PlanCheck] = Rule(
    "sort-large-for-few",
    "error",
    "A sort reads a large input to return a few rows (ORDER BY … LIMIT without an index).",
    check,
)
