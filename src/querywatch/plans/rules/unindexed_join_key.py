"""`unindexed-join-key`: a join reaches a small part of a large relation through a key that has
no index."""

from __future__ import annotations

import re

from querywatch.findings import Finding, Rule
from querywatch.plans.catalog import Catalog
from querywatch.plans.model import Plan, PlanNode
from querywatch.plans.policy import PlanPolicy
from querywatch.plans.predicates import (
    parse_condition,
    statement_shape,
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


def _check(plan: Plan, catalog: Catalog, policy: PlanPolicy, work: Work) -> list[Finding]:
    out: list[Finding] = []
    aliases = plan.aliases()
    reported: set[tuple[str, str]] = set()
    for node in plan.nodes():
        if node.extra.get("automatic_index"):
            found = _automatic_index(node, catalog, policy, plan)
            if found is not None:
                out.append(found)
            continue
        if not node.is_join:
            continue
        conds = [c for c in (node.hash_cond, node.merge_cond, node.join_filter) if c]
        for cond in conds:
            for pred in parse_condition(cond, plan.dialect):
                if pred.kind != "join":
                    continue
                for qual, col in (
                    (pred.qualifier, pred.column),
                    (pred.other_qualifier, pred.other_column),
                ):
                    scan = aliases.get(qual or "")
                    if scan is None or col is None:
                        continue
                    info = catalog.for_node(scan)
                    if not policy.is_large(info):
                        continue
                    assert info is not None and scan.relation is not None
                    if info.index_leading_with(col) is not None:
                        continue
                    if scan.node_type != "Seq Scan":
                        continue  # reached another way (an index on other columns)
                    if (work.rows_read(scan) or 0) < policy.large_table_rows:
                        continue  # a LIMIT above stops the read early
                    join_rows = node.rows_all
                    if join_rows is None or info.rows is None:
                        continue
                    if join_rows > policy.selective_fraction * info.rows:
                        continue  # the join wants most of the relation: a full read is right
                    if (scan.relation, col) in reported:
                        continue
                    reported.add((scan.relation, col))
                    out.append(
                        Finding(
                            rule="unindexed-join-key",
                            severity=RULE.severity,
                            message=(
                                f"{node.node_type} on `{pred.text}` reads all "
                                f"{fmt_rows(info.rows)} rows of {rel_name(scan)} for "
                                f"{fmt_rows(join_rows)} joined rows: {col} has no index"
                            ),
                            fix=f"index the join key: {ddl(scan, [col], plan.dialect)}",
                            evidence=evidence(
                                scan,
                                info,
                                join=node.node_type,
                                join_rows=rnd(join_rows),
                                column=col,
                                predicate=pred.text,
                                selectivity=rnd(join_rows / info.rows) if info.rows else None,
                            ),
                        )
                    )
    if plan.dialect == "sqlite":
        out.extend(_sqlite_join_keys(plan, catalog, policy, reported))
    return out


def _sqlite_join_keys(
    plan: Plan, catalog: Catalog, policy: PlanPolicy, reported: set[tuple[str, str]]
) -> list[Finding]:
    """SQLite prints no join conditions: read them from the statement. A large table read in full
    only to be joined to rows that a WHERE term narrows down needs an index on its join key."""
    shape = statement_shape(plan.sql, "sqlite")
    if shape is None:
        return []
    filtered = {p.qualifier for p in shape.where}
    if len(shape.tables) == 1:
        filtered.add(shape.tables[0].alias)
    scans = {n.alias: n for n in plan.scans() if n.alias}
    out: list[Finding] = []
    for pred in shape.joins:
        sides = (
            (pred.qualifier, pred.column, pred.other_qualifier),
            (pred.other_qualifier, pred.other_column, pred.qualifier),
        )
        for qual, col, other in sides:
            scan = scans.get(qual or "")
            if scan is None or col is None or scan.node_type != "Seq Scan" or scan.filter:
                continue
            if other not in filtered:
                continue  # the other side is not narrowed down: every row is joined anyway
            info = catalog.for_node(scan)
            if not policy.is_large(info):
                continue
            assert info is not None and scan.relation is not None
            if info.index_leading_with(col) is not None or (scan.relation, col) in reported:
                continue
            reported.add((scan.relation, col))
            out.append(
                Finding(
                    rule="unindexed-join-key",
                    severity=RULE.severity,
                    message=(
                        f"the join `{pred.text}` reads all {fmt_rows(info.rows)} rows of "
                        f"{rel_name(scan)} because {col} has no index"
                    ),
                    fix=f"index the join key: {ddl(scan, [col], plan.dialect)}",
                    evidence=evidence(scan, info, column=col, predicate=pred.text),
                )
            )
    return out


def _automatic_index(
    node: PlanNode, catalog: Catalog, policy: PlanPolicy, plan: Plan
) -> Finding | None:
    """SQLite builds a throw-away index on every run when a join key has none."""
    info = catalog.for_node(node)
    if not policy.is_large(info) or node.relation is None:
        return None
    assert info is not None
    cols = [c for c in _cond_columns(node.index_cond or "")]
    statement = ddl(node, cols, plan.dialect) if cols else "CREATE INDEX on the join key"
    return Finding(
        rule="unindexed-join-key",
        severity=RULE.severity,
        message=(
            f"SQLite builds an automatic index on {rel_name(node)} ({fmt_rows(info.rows)} rows) "
            f"on every run because the join key ({', '.join(cols) or '?'}) has no index"
        ),
        fix=f"index the join key: {statement}",
        evidence=evidence(node, info, columns=cols, detail=node.detail),
    )


def _cond_columns(cond: str) -> list[str]:
    return list(dict.fromkeys(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=|>|<|>=|<=)", cond)))


RULE: Rule[PlanCheck] = Rule(
    "unindexed-join-key",
    "error",
    "A join reaches a small part of a large relation through a key with no index.",
    check,
)
