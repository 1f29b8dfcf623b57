"""`spill-to-disk`: a sort or hash larger than work_mem writes temporary files (ANALYZE shows it
happened; without ANALYZE the estimated size is compared with work_mem).

An estimated sort holds the rows it is given: all of them for a Sort (a LIMIT directly above makes
it a top-N heap of the rows the LIMIT returns), one group of its presorted input at a time for an
Incremental Sort, and never more than a LIMIT above lets it be pulled."""

from __future__ import annotations

import math
from typing import Any

from querywatch.findings import Finding, Rule
from querywatch.plans.model import Plan, PlanNode
from querywatch.plans.predicates import (
    redact_condition,
)
from querywatch.plans.rules._base import (
    TUPLE_OVERHEAD,
    PlanCheck,
    PlanContext,
    ancestors,
    fmt_rows,
    rnd,
    single_scan,
)


def check(ctx: PlanContext) -> list[Finding]:
    plan = ctx.plan
    if plan.dialect != "postgres":
        return []
    out: list[Finding] = []
    parents = plan.parents()
    work_mem = plan.work_mem_kb
    hash_mem = (work_mem or 0) * (plan.hash_mem_multiplier or 1.0)
    for node in plan.nodes():
        if node.never_executed or (not node.analyzed and ctx.work.guessed(node)):
            continue  # never run, or sized by a planner default (a never-analyzed table)
        if node.node_type in ("Sort", "Incremental Sort"):
            found = _sort_spill(ctx, node, parents, work_mem)
        elif node.node_type == "Hash":
            found = _hash_spill(node, hash_mem, plan)
        elif node.node_type == "Aggregate" and node.analyzed:
            found = None
            if (node.disk_usage_kb or 0) > 0 or (node.hash_batches or 0) > 1:
                found = (
                    f"HashAggregate wrote {node.disk_usage_kb or 0:,.0f} kB to disk in "
                    f"{node.hash_batches or '?'} batches (work_mem {work_mem} kB)",
                    {"disk_kb": node.disk_usage_kb, "batches": node.hash_batches},
                )
        else:
            found = None
        if found is None:
            continue
        message, more = found
        out.append(
            Finding(
                rule="spill-to-disk",
                severity=RULE.severity,
                message=message,
                fix=_spill_fix(node, plan, more.get("needed_kb")),
                evidence={
                    "node": node.node_type,
                    "relation": None,
                    "rows": rnd(node.rows_all),
                    "rows_source": "actual" if node.actual_rows is not None else "estimated",
                    "cost": node.total_cost,
                    "work_mem_kb": work_mem,
                    "sort_keys": [redact_condition(k, plan.dialect) for k in node.sort_keys]
                    or None,
                    **{k: v for k, v in more.items() if v is not None},
                },
            )
        )
    return out


def _sort_spill(
    ctx: PlanContext, node: PlanNode, parents: dict[int, PlanNode], work_mem: int | None
) -> tuple[str, dict[str, Any]] | None:
    plan = ctx.plan
    if node.analyzed:
        disks = [node.sort_space_type] + [
            w.get("Sort Space Type") for w in node.extra.get("Workers", []) if isinstance(w, dict)
        ]
        if "Disk" not in disks:
            return None
        used = node.sort_space_kb if node.sort_space_type == "Disk" else None
        if used is None:
            used = max(
                (
                    float(w.get("Sort Space Used") or 0)
                    for w in node.extra.get("Workers", [])
                    if isinstance(w, dict) and w.get("Sort Space Type") == "Disk"
                ),
                default=0.0,
            )
        return (
            f"Sort of {fmt_rows(node.rows_all)} rows spilled to disk: {used:,.0f} kB written "
            f"({node.sort_method or 'external sort'}; work_mem {work_mem} kB)",
            {"disk_kb": used, "sort_method": node.sort_method, "needed_kb": used},
        )
    if work_mem is None or node.est_rows is None or node.width is None:
        return None
    rows = node.est_rows
    for parent in ancestors(node, parents):
        if parent.node_type in ("Gather Merge", "Gather", "Result", "Subquery Scan"):
            continue
        if parent.node_type == "Limit" and parent.est_rows is not None:
            bound = parent.est_rows + (plan.offset or 0)
            if bound * 2 < rows:
                rows = bound  # a top-N heap sort keeps only the rows the LIMIT returns
        break
    what = "Sort"
    if node.node_type == "Incremental Sort":
        # One group at a time, and no more than a LIMIT above lets it be pulled (a full Sort
        # holds all its input, however few rows are pulled from it).
        group = _group_rows(ctx, node)
        if group is None:
            return None  # its groups' size is unknown: no figure to judge by
        pulled = ctx.work.rows_per_execution(node)
        rows = min(rows, group, pulled if pulled is not None else rows)
        what = "Incremental Sort group"
    size_kb = rows * (_align(node.width) + TUPLE_OVERHEAD) / 1024
    if size_kb <= work_mem:
        return None
    return (
        f"{what} of ~{fmt_rows(rows)} rows x {node.width} B needs ~{size_kb / 1024:,.1f} MB, "
        f"more than work_mem ({work_mem:,} kB): it will spill to disk (estimated)",
        {"estimated_kb": round(size_kb), "needed_kb": size_kb},
    )


def _group_rows(ctx: PlanContext, node: PlanNode) -> float | None:
    """Rows of one group of an Incremental Sort's presorted input: its rows over the distinct
    values of the presorted key columns (pg_stats of the one relation below; the most distinct
    column bounds the number of groups from below, so the group from above)."""
    presorted = [str(k) for k in node.extra.get("Presorted Key") or []]
    scan = single_scan(node)
    info = ctx.catalog.for_node(scan) if scan is not None else None
    if not presorted or info is None or node.est_rows is None:
        return None
    groups = 0.0
    for key in presorted:
        column = key.strip().split(".")[-1].strip('"')
        groups = max(groups, info.distinct_values(column) or 0.0)
    if groups < 1:
        return None
    return max(node.est_rows / groups, 1.0)


def _hash_spill(
    node: PlanNode, hash_mem_kb: float, plan: Plan
) -> tuple[str, dict[str, Any]] | None:
    del plan
    if node.analyzed:
        if (node.hash_batches or 1) <= 1:
            return None
        return (
            f"Hash of {fmt_rows(node.rows_all)} rows spilled to disk in {node.hash_batches} "
            f"batches (planned {node.original_hash_batches or '?'}; peak memory "
            f"{node.peak_memory_kb or 0:,.0f} kB)",
            {
                "batches": node.hash_batches,
                "original_batches": node.original_hash_batches,
                "peak_memory_kb": node.peak_memory_kb,
                "needed_kb": (node.peak_memory_kb or 0) * (node.hash_batches or 1),
            },
        )
    if not hash_mem_kb or node.est_rows_all is None or node.width is None:
        return None
    size_kb = node.est_rows_all * (_align(node.width) + TUPLE_OVERHEAD) / 1024
    if size_kb <= hash_mem_kb:
        return None
    return (
        f"Hash of ~{fmt_rows(node.est_rows_all)} rows x {node.width} B needs ~"
        f"{size_kb / 1024:,.1f} MB, more than work_mem x hash_mem_multiplier "
        f"({hash_mem_kb:,.0f} kB): it will spill to disk in batches (estimated)",
        {"estimated_kb": round(size_kb), "needed_kb": size_kb},
    )


def _align(width: int) -> int:
    return (width + 7) // 8 * 8


def _spill_fix(node: PlanNode, plan: Plan, needed_kb: float | None) -> str:
    mem = ""
    if needed_kb:
        mb = max(1, math.ceil(needed_kb * 1.5 / 1024))
        mem = f"SET LOCAL work_mem = '{mb}MB' in that transaction"
    if node.node_type in ("Sort", "Incremental Sort") and node.sort_keys:
        scans = [s for s in node.walk() if s.is_scan]
        if len(scans) == 1:
            keys = ", ".join(redact_condition(k, plan.dialect) or "" for k in node.sort_keys)
            return (
                f"sort fewer rows (filter or LIMIT earlier), or let an index on ({keys}) return "
                f"them in order" + (f"; else {mem}" if mem else "")
            )
    if node.node_type == "Hash":
        return "hash the smaller side or fewer rows (filter before the join)" + (
            f"; else {mem}" if mem else ""
        )
    return "process fewer rows at once" + (f"; else {mem}" if mem else "")


RULE: Rule[PlanCheck] = Rule(
    "spill-to-disk",
    "warning",
    "A sort or hash larger than work_mem writes temporary files.",
    check,
)
