"""Plan rules: what in a plan will hurt, judged by the relation's real size and the predicate's
selectivity, so the same query shape passes on a 1,000-row table and is flagged on a large one.

Each rule is a function ``(plan, catalog, policy) -> list[Finding]`` with a stable slug id (the id
users suppress and baselines record). Evidence carries the figures the verdict rests on (node,
relation, rows, cost, selectivity, table rows…), with literal values replaced by ``?``. Rules read
plan structure, sizes and statistics only, never what a table or column is called. A rule that
lacks a figure it needs (SQLite has no estimates; spills and misestimates are only certain after
EXPLAIN ANALYZE) stays silent or says which figure is estimated.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from querywatch.findings import SEVERITIES, Finding, Severity
from querywatch.plans.catalog import Catalog, RelationInfo, create_index_sql
from querywatch.plans.model import Plan, PlanNode
from querywatch.plans.predicates import (
    Predicate,
    cast_target,
    parse_condition,
    redact_condition,
    statement_shape,
)
from querywatch.sql import fingerprint


@dataclass(frozen=True, slots=True)
class PlanPolicy:
    """Thresholds of the plan rules and of index advice (docs/plans.md lists the defaults)."""

    large_table_rows: float = 100_000
    """A relation with at least this many rows is large: a full read of it costs real time."""
    large_table_bytes: int = 1 << 30
    """…or one of at least this many bytes (1 GiB), whatever its row count."""
    selective_fraction: float = 0.01
    """A predicate is selective when it keeps at most this fraction of the relation (1%)."""
    nested_loop_inner_rows: float = 1_000_000
    """A nested loop is flagged when its inner side reads at least this many rows over all loops."""
    deep_offset_rows: int = 10_000
    """An OFFSET that makes the database produce and throw away at least this many rows."""
    misestimate_factor: float = 100
    """Estimated vs actual rows differing by this factor or more is a wrong estimate."""
    misestimate_min_rows: float = 1_000
    """…when the larger of the two is at least this many rows (small nodes cannot hurt)."""
    min_improvement: float = 0.30
    """Index advice: a candidate must cut the estimated cost by at least this fraction (30%)."""
    min_advice_rows: float = 10_000
    """Index advice: relations smaller than this get no candidates (a full read is cheap)."""
    max_candidates: int = 8
    """Index advice: at most this many candidates validated per statement."""

    def is_large(self, info: RelationInfo | None) -> bool:
        if info is None:
            return False
        return (info.rows or 0) >= self.large_table_rows or (
            info.size_bytes or 0
        ) >= self.large_table_bytes


Rule = Callable[[Plan, Catalog, PlanPolicy], list[Finding]]

# Bytes a sorted or hashed tuple takes in memory beyond its data (PostgreSQL's tuple header).
_TUPLE_OVERHEAD = 24


def check_plan(plan: Plan, catalog: Catalog, policy: PlanPolicy | None = None) -> list[Finding]:
    """Every finding of every rule on ``plan``, errors first; each carries the statement's
    fingerprint and normalized text (never literal values)."""
    policy = policy or PlanPolicy()
    found: list[Finding] = []
    for rule in RULES.values():
        found.extend(rule(plan, catalog, policy))
    fp = fingerprint(plan.sql, plan.dialect) if plan.sql else None
    if fp is not None:
        found = [dataclasses.replace(f, fingerprint=fp.id, sql=fp.normalized) for f in found]
    order = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(found, key=lambda f: (order[f.severity], f.rule))


# --- helpers ------------------------------------------------------------------------------------


def _name(node: PlanNode) -> str:
    assert node.relation is not None
    return f"{node.schema}.{node.relation}" if node.schema else node.relation


def _evidence(node: PlanNode, info: RelationInfo | None, **more: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "node": node.node_type,
        "relation": _name(node) if node.relation else None,
        "rows": _round(node.rows_all),
        "rows_source": "actual" if node.actual_rows is not None else "estimated",
        "cost": node.total_cost,
    }
    if info is not None:
        ev["table_rows"] = _round(info.rows)
        ev["table_bytes"] = info.size_bytes
    ev.update({k: v for k, v in more.items() if v is not None})
    return ev


def _round(value: float | None) -> float | None:
    if value is None:
        return None
    return round(value, 4) if value < 1 else round(value)


def _own(preds: list[Predicate], node: PlanNode) -> list[Predicate]:
    """Predicates on this scan's own columns (bare, or qualified by its alias/relation)."""
    mine = {node.alias, node.relation, None}
    return [p for p in preds if p.qualifier in mine]


def _rows(value: float | None) -> str:
    return "?" if value is None else f"{value:,.0f}"


def _pct(value: float | None) -> str:
    if value is None:
        return "unknown"
    if value == 0:
        return "none"
    return f"{value:.2%}" if value >= 0.0001 else f"{value:.4%}"


def _selectivity(node: PlanNode, info: RelationInfo | None) -> float | None:
    rows = node.rows_all
    if rows is None or info is None or not info.rows:
        return None
    return min(rows / info.rows, 1.0)


def _ancestors(node: PlanNode, parents: dict[int, PlanNode]) -> Iterator[PlanNode]:
    current = parents.get(id(node))
    while current is not None:
        yield current
        current = parents.get(id(current))


def _ddl(node: PlanNode, keys: list[str], dialect: str) -> str:
    assert node.relation is not None
    return create_index_sql(
        node.schema, node.relation, keys, dialect="sqlite" if dialect == "sqlite" else "postgres"
    )


_INDEXABLE = ("eq", "in", "range", "null")


def _indexable(preds: list[Predicate]) -> list[Predicate]:
    """AND-ed comparisons a plain btree index on the bare column could serve."""
    return [
        p
        for p in preds
        if p.top_level
        and p.wrapper is None
        and p.kind in _INDEXABLE
        and not p.negated
        and not (p.kind == "null" and p.negated)
    ]


def _key_order(preds: list[Predicate], info: RelationInfo | None) -> list[str]:
    """Index key order: equality columns first (most distinct values first), then one range."""
    eq = [p.column for p in preds if p.kind in ("eq", "in", "null")]
    rng = [p.column for p in preds if p.kind == "range"]
    eq = list(dict.fromkeys(eq))
    if info is not None:
        eq.sort(key=lambda c: -(info.distinct_values(c) or 0))
    keys = eq + [c for c in rng[:1] if c not in eq]
    return keys


# --- the rules ----------------------------------------------------------------------------------


def seq_scan_large_table(plan: Plan, catalog: Catalog, policy: PlanPolicy) -> list[Finding]:
    """A full read of a large relation to keep a small fraction of its rows: a Seq Scan, or an
    index scan with no index condition (it walks the whole index, e.g. for ORDER BY)."""
    out: list[Finding] = []
    for node in plan.nodes():
        if node.relation is None or not node.filter or not _full_read(node):
            continue
        info = catalog.for_node(node)
        if not policy.is_large(info):
            continue
        assert info is not None
        preds = _indexable(_own(parse_condition(node.filter, plan.dialect), node))
        if not preds:
            continue  # only functions, LIKE '%…' or OR: other rules (or no index) apply
        selectivity = _selectivity(node, info)
        if selectivity is None:
            # SQLite keeps no column statistics: an equality on a large table is taken as selective.
            if not any(p.kind in ("eq", "in") for p in preds):
                continue
        elif selectivity > policy.selective_fraction:
            continue  # most rows are wanted: a full read is the right plan
        keys = _key_order(preds, info)
        existing = info.index_leading_with(keys[0]) if keys else None
        returned = (
            f"to return {_rows(node.rows_all)} ({_pct(selectivity)})"
            if selectivity is not None
            else "for an equality match (SQLite keeps no statistics on how many match)"
        )
        how = node.node_type
        if node.node_type != "Seq Scan":
            how += f" using {node.index_name} with no index condition"
        message = (
            f"{how} on {_name(node)} reads all {_rows(info.rows)} rows {returned} "
            f"where {' and '.join(p.text for p in preds)}"
        )
        if existing is not None:
            fix = (
                f"index {existing.name} on ({keys[0]}) exists but is not used: make the compared "
                "value the column's type, or ANALYZE the table"
            )
        else:
            fix = f"add an index: {_ddl(node, keys, plan.dialect)}"
        out.append(
            Finding(
                rule="seq-scan-large-table",
                severity="error",
                message=message,
                fix=fix,
                evidence=_evidence(
                    node,
                    info,
                    selectivity=_round(selectivity),
                    predicate=redact_condition(node.filter, plan.dialect),
                    columns=keys,
                ),
            )
        )
    return out


def _full_read(node: PlanNode) -> bool:
    if node.node_type == "Seq Scan":
        return True
    return node.node_type in ("Index Scan", "Index Only Scan") and not node.index_cond


_TEXTUAL = ("TEXT", "VARCHAR", "CHARACTER VARYING", "CHAR", "BPCHAR", "CHARACTER", "NAME")


def _is_relabel(pred: Predicate, info: RelationInfo) -> bool:
    """A cast PostgreSQL adds itself between text types (varchar -> text): not a function."""
    if pred.wrapper != "cast":
        return False
    target = cast_target(pred.expression)
    column = info.columns.get(pred.column)
    if target is None or column is None or column.type is None:
        return False
    source = column.type.upper().split("(")[0].strip()
    return target in _TEXTUAL and source in _TEXTUAL


def _filtered_scans_of_large(
    plan: Plan, catalog: Catalog, policy: PlanPolicy
) -> Iterator[tuple[PlanNode, RelationInfo]]:
    """Scans with a filter over a relation large enough for the size rules to judge."""
    for node in plan.nodes():
        if not node.is_scan or not node.filter:
            continue
        info = catalog.for_node(node)
        if info is not None and policy.is_large(info):
            yield node, info


def function_on_indexed_column(plan: Plan, catalog: Catalog, policy: PlanPolicy) -> list[Finding]:
    """A function or cast applied to an indexed column, so its index cannot serve the filter."""
    out: list[Finding] = []
    for node, info in _filtered_scans_of_large(plan, catalog, policy):
        selectivity = _selectivity(node, info)
        if selectivity is not None and selectivity > policy.selective_fraction:
            continue
        for pred in _own(parse_condition(node.filter, plan.dialect), node):
            if pred.wrapper is None or pred.kind not in ("eq", "in", "range", "like", "null"):
                continue
            if pred.negated or pred.leading_wildcard or _is_relabel(pred, info):
                continue
            index = info.index_leading_with(pred.column)
            if index is None:
                continue  # no index to lose: the seq-scan rule covers a missing one
            if pred.expression and info.has_expression_index(pred.expression):
                continue
            expression = pred.expression or pred.column
            out.append(
                Finding(
                    rule="function-on-indexed-column",
                    severity="error",
                    message=(
                        f"{pred.wrapper}() on {_name(node)}.{pred.column} keeps index "
                        f"{index.name} from serving `{pred.text}`: {node.node_type} over "
                        f"{_rows(info.rows)} rows"
                    ),
                    fix=(
                        f"compare the bare column (apply {pred.wrapper} to the value instead), "
                        f"or index the expression: {_ddl(node, [f'({expression})'], plan.dialect)}"
                    ),
                    evidence=_evidence(
                        node,
                        info,
                        column=pred.column,
                        function=pred.wrapper,
                        index=index.name,
                        selectivity=_round(selectivity),
                        predicate=pred.text,
                    ),
                )
            )
    return out


def leading_wildcard_like(plan: Plan, catalog: Catalog, policy: PlanPolicy) -> list[Finding]:
    """LIKE/ILIKE '%…' on a large relation: no btree index can serve it, every row is read."""
    out: list[Finding] = []
    for node, info in _filtered_scans_of_large(plan, catalog, policy):
        for pred in _own(parse_condition(node.filter, plan.dialect), node):
            if not pred.leading_wildcard or pred.negated:
                continue
            if plan.dialect == "sqlite":
                fix = (
                    "anchor the pattern (LIKE 'abc%' can use an index), or search an FTS5 "
                    "full-text table instead of LIKE '%…%'"
                )
            else:
                key = f"({pred.expression})" if pred.expression else pred.column
                ddl = create_index_sql(
                    node.schema,
                    node.relation or "",
                    [key],
                    method="gin",
                    opclass="gin_trgm_ops",
                )
                fix = f"a trigram index serves '%…' patterns: CREATE EXTENSION pg_trgm; {ddl}"
            out.append(
                Finding(
                    rule="leading-wildcard-like",
                    severity="warning",
                    message=(
                        f"`{pred.text}` starts with a wildcard: {node.node_type} on {_name(node)} "
                        f"tests all {_rows(info.rows)} rows"
                    ),
                    fix=fix,
                    evidence=_evidence(
                        node,
                        info,
                        column=pred.column,
                        predicate=pred.text,
                        case_insensitive=pred.case_insensitive or None,
                    ),
                )
            )
    return out


_PASS_THROUGH = ("Materialize", "Memoize", "Hash", "Sort", "Gather", "Gather Merge", "Result")


def nested_loop_large_inner(plan: Plan, catalog: Catalog, policy: PlanPolicy) -> list[Finding]:
    """A nested loop that reads a large relation once per outer row."""
    out: list[Finding] = []
    for node in plan.nodes():
        if node.node_type != "Nested Loop" or len(node.children) != 2:
            continue
        outer, inner = node.children
        for scan, materialized in _inner_scans(inner):
            info = catalog.for_node(scan)
            if not policy.is_large(info):
                continue
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
                f"give each loop an index lookup: {_ddl(scan, [key], plan.dialect)}"
                if key
                else "give the inner side an index on its join key, or check the outer row "
                "estimate (ANALYZE) so the planner can pick a hash join"
            )
            out.append(
                Finding(
                    rule="nested-loop-large-inner",
                    severity="error",
                    message=(
                        f"Nested Loop runs {_rows(loops)} times over {scan.node_type} on "
                        f"{_name(scan)} ({_rows(per_loop)} rows each): {_rows(total)} rows read"
                    ),
                    fix=fix,
                    evidence=_evidence(
                        scan,
                        info,
                        loops=_round(loops),
                        inner_rows_per_loop=_round(per_loop),
                        inner_rows_total=_round(total),
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


def spill_to_disk(plan: Plan, catalog: Catalog, policy: PlanPolicy) -> list[Finding]:
    """A sort or hash larger than work_mem: it writes temporary files (ANALYZE shows it happened;
    without ANALYZE the estimated size is compared with work_mem)."""
    del catalog, policy
    if plan.dialect != "postgres":
        return []
    out: list[Finding] = []
    parents = plan.parents()
    work_mem = plan.work_mem_kb
    hash_mem = (work_mem or 0) * (plan.hash_mem_multiplier or 1.0)
    for node in plan.nodes():
        if node.never_executed:
            continue
        if node.node_type in ("Sort", "Incremental Sort"):
            found = _sort_spill(node, parents, work_mem, plan)
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
                severity="warning",
                message=message,
                fix=_spill_fix(node, plan, more.get("needed_kb")),
                evidence={
                    "node": node.node_type,
                    "relation": None,
                    "rows": _round(node.rows_all),
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
    node: PlanNode, parents: dict[int, PlanNode], work_mem: int | None, plan: Plan
) -> tuple[str, dict[str, Any]] | None:
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
            f"Sort of {_rows(node.rows_all)} rows spilled to disk: {used:,.0f} kB written "
            f"({node.sort_method or 'external sort'}; work_mem {work_mem} kB)",
            {"disk_kb": used, "sort_method": node.sort_method, "needed_kb": used},
        )
    if work_mem is None or node.est_rows is None or node.width is None:
        return None
    rows = node.est_rows
    for parent in _ancestors(node, parents):
        if parent.node_type in ("Gather Merge", "Gather", "Result", "Subquery Scan"):
            continue
        if parent.node_type == "Limit" and parent.est_rows is not None:
            bound = parent.est_rows + (plan.offset or 0)
            if bound * 2 < rows:
                rows = bound  # a top-N heap sort keeps only the rows the LIMIT returns
        break
    size_kb = rows * (_align(node.width) + _TUPLE_OVERHEAD) / 1024
    if size_kb <= work_mem:
        return None
    return (
        f"Sort of ~{_rows(rows)} rows x {node.width} B needs ~{size_kb / 1024:,.1f} MB, more "
        f"than work_mem ({work_mem:,} kB): it will spill to disk (estimated)",
        {"estimated_kb": round(size_kb), "needed_kb": size_kb},
    )


def _hash_spill(
    node: PlanNode, hash_mem_kb: float, plan: Plan
) -> tuple[str, dict[str, Any]] | None:
    del plan
    if node.analyzed:
        if (node.hash_batches or 1) <= 1:
            return None
        return (
            f"Hash of {_rows(node.rows_all)} rows spilled to disk in {node.hash_batches} "
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
    size_kb = node.est_rows_all * (_align(node.width) + _TUPLE_OVERHEAD) / 1024
    if size_kb <= hash_mem_kb:
        return None
    return (
        f"Hash of ~{_rows(node.est_rows_all)} rows x {node.width} B needs ~"
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


def deep_offset(plan: Plan, catalog: Catalog, policy: PlanPolicy) -> list[Finding]:
    """OFFSET n makes the database produce and throw away n rows for every page."""
    skipped: float | None = None
    node: PlanNode | None = next((n for n in plan.nodes() if n.node_type == "Limit"), None)
    source = "estimated"
    if node is not None and node.analyzed and node.children:
        child_rows = node.children[0].actual_rows_all
        if child_rows is not None and node.actual_rows is not None:
            skipped = max(child_rows - node.actual_rows, 0.0)
            source = "actual"
    elif plan.offset:
        if node is not None and node.children and node.children[0].est_rows_all is not None:
            skipped = min(float(plan.offset), node.children[0].est_rows_all)
        else:
            sizes = [
                (catalog.for_node(s).rows or 0)  # type: ignore[union-attr]
                for s in plan.scans()
                if catalog.for_node(s) is not None
            ]
            skipped = min(float(plan.offset), max(sizes)) if sizes else None
    if skipped is None or skipped < policy.deep_offset_rows:
        return []
    offset_text = f"OFFSET {plan.offset:,}" if plan.offset else "the OFFSET"
    return [
        Finding(
            rule="deep-offset",
            severity="warning",
            message=(
                f"{offset_text} makes the database produce and discard {_rows(skipped)} rows "
                "for every page"
            ),
            fix=(
                "use keyset pagination: remember the last row's sort key and ask for "
                "WHERE (sort key) > (last seen) ORDER BY sort key LIMIT n"
            ),
            evidence={
                "node": node.node_type if node is not None else None,
                "relation": None,
                "rows": _round(skipped),
                "rows_source": source,
                "cost": node.total_cost if node is not None else None,
                "offset": plan.offset,
                "skipped_rows": _round(skipped),
            },
        )
    ]


def row_estimate_off(plan: Plan, catalog: Catalog, policy: PlanPolicy) -> list[Finding]:
    """Estimated rows off by 100x or more (needs EXPLAIN ANALYZE): the plan was chosen blind."""
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
                severity="warning",
                message=(
                    f"{node.label()} estimated {_rows(est)} rows but returned {_rows(act)} "
                    f"({ratio:,.0f}x {direction}estimate)"
                ),
                fix=_estimate_fix(target, info, plan),
                evidence={
                    "node": node.node_type,
                    "relation": _name(target) if target is not None else None,
                    "rows": _round(act),
                    "rows_source": "actual",
                    "estimated_rows": _round(est),
                    "ratio": round(ratio, 1),
                    "loops": _round(node.actual_loops),
                    "cost": node.total_cost,
                    "table_rows": _round(info.rows) if info is not None else None,
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
    name = _name(target)
    if (
        info.reltuples
        and info.live_rows
        and max(info.reltuples, info.live_rows) > 2 * min(info.reltuples, info.live_rows)
    ):
        return f"statistics are stale: ANALYZE {name}"
    columns = list(
        dict.fromkeys(p.column for p in _own(parse_condition(target.filter, plan.dialect), target))
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


def unindexed_join_key(plan: Plan, catalog: Catalog, policy: PlanPolicy) -> list[Finding]:
    """A join reaches a small part of a large relation through a key that has no index."""
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
                            severity="error",
                            message=(
                                f"{node.node_type} on `{pred.text}` reads all "
                                f"{_rows(info.rows)} rows of {_name(scan)} for "
                                f"{_rows(join_rows)} joined rows: {col} has no index"
                            ),
                            fix=f"index the join key: {_ddl(scan, [col], plan.dialect)}",
                            evidence=_evidence(
                                scan,
                                info,
                                join=node.node_type,
                                join_rows=_round(join_rows),
                                column=col,
                                predicate=pred.text,
                                selectivity=_round(join_rows / info.rows) if info.rows else None,
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
                    severity="error",
                    message=(
                        f"the join `{pred.text}` reads all {_rows(info.rows)} rows of "
                        f"{_name(scan)} because {col} has no index"
                    ),
                    fix=f"index the join key: {_ddl(scan, [col], plan.dialect)}",
                    evidence=_evidence(scan, info, column=col, predicate=pred.text),
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
    ddl = _ddl(node, cols, plan.dialect) if cols else "CREATE INDEX on the join key"
    return Finding(
        rule="unindexed-join-key",
        severity="error",
        message=(
            f"SQLite builds an automatic index on {_name(node)} ({_rows(info.rows)} rows) on every "
            f"run because the join key ({', '.join(cols) or '?'}) has no index"
        ),
        fix=f"index the join key: {ddl}",
        evidence=_evidence(node, info, columns=cols, detail=node.detail),
    )


def _cond_columns(cond: str) -> list[str]:
    import re

    return list(dict.fromkeys(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=|>|<|>=|<=)", cond)))


RULES: dict[str, Rule] = {
    "seq-scan-large-table": seq_scan_large_table,
    "function-on-indexed-column": function_on_indexed_column,
    "leading-wildcard-like": leading_wildcard_like,
    "nested-loop-large-inner": nested_loop_large_inner,
    "spill-to-disk": spill_to_disk,
    "deep-offset": deep_offset,
    "row-estimate-off": row_estimate_off,
    "unindexed-join-key": unindexed_join_key,
}
"""Every plan rule by its stable id, in the order docs/plans.md lists them."""

RULE_SEVERITY: dict[str, Severity] = {
    "seq-scan-large-table": "error",
    "function-on-indexed-column": "error",
    "leading-wildcard-like": "warning",
    "nested-loop-large-inner": "error",
    "spill-to-disk": "warning",
    "deep-offset": "warning",
    "row-estimate-off": "warning",
    "unindexed-join-key": "error",
}
