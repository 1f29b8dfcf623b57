"""`wide-rows`: the plan carries rows far wider than the statement uses, in a volume that matters.

Bytes are rows × width, both from the plan. Two places where the width is work, not result:

- a node that **holds** its rows — a Sort, a Hash, a Materialize, a materialized CTE — keeping
  every row at its full width (in ``work_mem``, or spilled to disk) when what reads it above uses
  a few narrow columns: a ``MATERIALIZED`` CTE of ``SELECT *`` stores every column of every row
  even when the query reads one (PostgreSQL prunes unused columns of subqueries, not of
  materialized CTEs);
- a **scan** that reads the whole heap row of a wide table (its bytes per row, from the catalog)
  to use a narrow part of it: an index-only scan of a covering index reads only the columns used.
  This one speaks only when no rule before it has named the plan's work.

Nodes whose width is their job are left alone: the input of a DISTINCT, UNION, GROUP BY or window
(every column is a key), and a statement that returns the wide rows itself (that is
``unbounded-read``'s to judge, by what it sends).
"""

from __future__ import annotations

from querywatch.findings import Finding, Rule
from querywatch.plans.model import PlanNode
from querywatch.plans.predicates import parse_condition
from querywatch.plans.rules._base import (
    TUPLE_OVERHEAD,
    PlanCheck,
    PlanContext,
    ancestors,
    own,
    work_evidence,
)

_HOLDING = frozenset({"Sort", "Incremental Sort", "Hash", "Materialize"})
# Nodes that compute their result from every column of their input (the columns are the keys).
_KEYED = frozenset({"Unique", "SetOp", "Group", "Aggregate", "WindowAgg", "HashSetOp"})


def check(ctx: PlanContext) -> list[Finding]:
    plan = ctx.plan
    if plan.dialect != "postgres" or plan.root.width is None:
        return []
    found = [f for f in (_held(ctx, n) for n in plan.nodes()) if f is not None]
    found += [f for f in (_scanned(ctx, n) for n in plan.scans()) if f is not None]
    found.sort(key=lambda f: -float(f.evidence.get("carried_bytes") or 0))
    return found[:1]  # the widest place: one finding per plan says where the bytes go


def _held(ctx: PlanContext, node: PlanNode) -> Finding | None:
    policy, work = ctx.policy, ctx.work
    cte = _cte_name(node)
    if node.node_type not in _HOLDING and cte is None:
        return None
    if node.width is None:
        return None
    parents = ctx.plan.parents()
    if cte is None and any(a.node_type in _KEYED for a in ancestors(node, parents)):
        return None  # DISTINCT, UNION, GROUP BY, window: the columns are the keys
    used = _cte_scan_width(ctx, cte) if cte is not None else ctx.plan.root.width
    if used is None or node.width < policy.wide_rows_factor * max(used, 1):
        return None
    rows = work.rows_per_execution(node) if cte is None else work.rows_out(node)
    if node.node_type == "Sort" or node.node_type == "Hash":
        child = next(iter(node.children), None)  # a sort or hash holds all of its input
        rows = work.rows_per_execution(child) if child is not None else rows
    if rows is None:
        return None
    carried = rows * (node.width + TUPLE_OVERHEAD)
    needed = rows * (used + TUPLE_OVERHEAD)
    if carried - needed < policy.wide_rows_bytes:
        return None
    what = f"the materialized CTE {cte}" if cte else node.label()
    return Finding(
        rule=RULE.id,
        severity=RULE.severity,
        message=(
            f"{what} holds {rows:,.0f} rows {node.width} B wide (~{_mb(carried)}) where "
            f"{'its readers take' if cte else 'the statement returns'} {used} B per row: "
            f"~{_mb(carried - needed)} carried for nothing"
        ),
        fix=(
            "select only the columns used in the CTE (or let PostgreSQL inline it: drop "
            "MATERIALIZED), so each stored row is narrow"
            if cte
            else "select only the columns used, so each held row is narrow (a subquery or CTE "
            "with the needed columns, the wide ones fetched for the final rows only)"
        ),
        evidence=work_evidence(
            ctx,
            node,
            width=node.width,
            used_width=used,
            held_rows=rows,
            carried_bytes=carried,
            needed_bytes=needed,
        ),
    )


def _scanned(ctx: PlanContext, scan: PlanNode) -> Finding | None:
    policy, work = ctx.policy, ctx.work
    info = ctx.catalog.for_node(scan)
    if scan.width is None or info is None or not info.rows or not info.size_bytes:
        return None
    if scan.node_type in ("Index Only Scan", "Bitmap Heap Scan"):
        return None  # already narrow, or reaching a few pages
    if any(f.severity in ("error", "warning") for f in ctx.found):
        return None  # a rule before this one already names the plan's work and its fix
    row_bytes = info.size_bytes / info.rows
    read = work.rows_read(scan)
    if read is None or row_bytes < policy.wide_rows_factor * (scan.width + TUPLE_OVERHEAD):
        return None
    carried = read * row_bytes
    if carried < policy.large_table_bytes:
        return None
    needed = read * (scan.width + TUPLE_OVERHEAD)
    filters = [p.column for p in own(parse_condition(scan.filter, ctx.plan.dialect), scan)]
    keys = ", ".join(dict.fromkeys(filters)) or "the filtered columns"
    return Finding(
        rule=RULE.id,
        severity=RULE.severity,
        message=(
            f"{scan.label()} reads {read:,.0f} rows of ~{row_bytes:,.0f} B (~{_mb(carried)}) to "
            f"use {scan.width} B of each (~{_mb(needed)})"
        ),
        fix=(
            f"a covering index on ({keys}) INCLUDE (the selected columns) lets an index-only "
            "scan read the columns used and not the whole rows; and select only those columns"
        ),
        evidence=work_evidence(
            ctx,
            scan,
            width=scan.width,
            row_bytes=round(row_bytes),
            rows_read=read,
            carried_bytes=carried,
            needed_bytes=needed,
        ),
    )


def _cte_name(node: PlanNode) -> str | None:
    name = str(node.extra.get("Subplan Name") or "")
    return name[4:] if node.parent_relationship == "InitPlan" and name.startswith("CTE ") else None


def _cte_scan_width(ctx: PlanContext, cte: str) -> int | None:
    """The widest read of the CTE: its CTE Scans (by alias; every CTE Scan when the plan has
    one CTE)."""
    scans = [n for n in ctx.plan.nodes() if n.node_type == "CTE Scan" and n.width is not None]
    ctes = [n for n in ctx.plan.nodes() if _cte_name(n) is not None]
    named = [n for n in scans if n.alias == cte]
    readers = named if named else (scans if len(ctes) == 1 else [])
    return max(n.width for n in readers if n.width is not None) if readers else None


def _mb(size: float) -> str:
    return f"{size / 1048576:,.0f} MB"


RULE: Rule[PlanCheck] = Rule(
    "wide-rows",
    "warning",
    "The plan holds or reads rows far wider than the columns it uses, in a volume that matters.",
    check,
)
