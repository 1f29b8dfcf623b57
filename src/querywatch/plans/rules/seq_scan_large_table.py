"""`seq-scan-large-table`: a full read of a large relation to keep a small fraction of its rows: a
Seq Scan, or an index scan with no index condition (it walks the whole index, e.g. for ORDER BY)."""

from __future__ import annotations

from querywatch.findings import Finding, Rule
from querywatch.plans.predicates import (
    parse_condition,
    redact_condition,
)
from querywatch.plans.rules._base import (
    PlanCheck,
    PlanContext,
    ddl,
    evidence,
    fmt_rows,
    full_read,
    indexable,
    key_order,
    own,
    pct,
    rel_name,
    rnd,
    rows_tested,
    selectivity_of,
)


def check(ctx: PlanContext) -> list[Finding]:
    plan, catalog, policy = ctx.plan, ctx.catalog, ctx.policy
    out: list[Finding] = []
    for node in plan.nodes():
        if node.relation is None or not node.filter or not full_read(node):
            continue
        info = catalog.for_node(node)
        if not policy.is_large(info):
            continue
        if (ctx.work.rows_read(node) or 0) < policy.large_table_rows:
            continue  # a LIMIT above stops the read early: it finds its rows first
        assert info is not None
        preds = indexable(own(parse_condition(node.filter, plan.dialect), node))
        if not preds:
            continue  # only functions, LIKE '%…' or OR: other rules (or no index) apply
        selectivity = selectivity_of(node, info)
        if selectivity is None:
            # SQLite keeps no column statistics: an equality on a large table is taken as selective.
            if not any(p.kind in ("eq", "in") for p in preds):
                continue
        elif selectivity > policy.selective_fraction:
            continue  # most rows are wanted: a full read is the right plan
        keys = key_order(preds, info)
        existing = info.index_leading_with(keys[0]) if keys else None
        returned = (
            f"to return {fmt_rows(node.rows_all)} ({pct(selectivity)})"
            if selectivity is not None
            else "for an equality match (SQLite keeps no statistics on how many match)"
        )
        how = node.node_type
        if node.node_type != "Seq Scan":
            how += f" using {node.index_name} with no index condition" + (
                " but IS NOT NULL" if node.index_cond else ""
            )
        message = (
            f"{how} on {rel_name(node)} reads {rows_tested(ctx, node, info)} {returned} "
            f"where {' and '.join(p.text for p in preds)}"
        )
        if existing is not None:
            fix = (
                f"index {existing.name} on ({keys[0]}) exists but is not used: make the compared "
                "value the column's type, or ANALYZE the table"
            )
        else:
            fix = f"add an index: {ddl(node, keys, plan.dialect)}"
        out.append(
            Finding(
                rule="seq-scan-large-table",
                severity=RULE.severity,
                message=message,
                fix=fix,
                evidence=evidence(
                    node,
                    info,
                    selectivity=rnd(selectivity),
                    predicate=redact_condition(node.filter, plan.dialect),
                    columns=keys,
                ),
            )
        )
    return out


RULE: Rule[PlanCheck] = Rule(
    "seq-scan-large-table",
    "error",
    "A full read of a large relation that keeps a small fraction of its rows.",
    check,
)
