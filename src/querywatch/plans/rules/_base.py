"""What every plan rule shares: the context a check reads, and helpers for figures and fixes.

A check is ``check(ctx: PlanContext) -> list[Finding]``. The context holds the plan, the catalog
(real sizes, indexes, statistics), the policy (thresholds), the validated index advice when the
caller computed it, the findings of the rules before it in ``RULES``, and the work estimate
(``ctx.work``: how many rows each node reads and returns, over all its executions).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from querywatch.findings import Finding
from querywatch.plans.catalog import Catalog, RelationInfo, create_index_sql
from querywatch.plans.model import Plan, PlanNode
from querywatch.plans.policy import PlanPolicy
from querywatch.plans.predicates import Predicate
from querywatch.plans.rules._work import Work, reads_everything, scans_below

full_read = reads_everything

if TYPE_CHECKING:  # advice imports the policy, not the rules: no cycle at run time
    from querywatch.plans.advice import Advice


@dataclass(slots=True)
class PlanContext:
    """Everything a rule may judge by, for one plan."""

    plan: Plan
    catalog: Catalog
    policy: PlanPolicy
    advice: Advice | None = None
    found: list[Finding] = field(default_factory=list)  # findings of the rules listed before
    _work: Work | None = None

    @property
    def work(self) -> Work:
        if self._work is None:
            self._work = Work(self.plan, self.catalog)
        return self._work


PlanCheck = Callable[[PlanContext], list[Finding]]
"""What a rule's ``check`` is."""

# Bytes a sorted or hashed tuple takes in memory beyond its data (PostgreSQL's tuple header).
TUPLE_OVERHEAD = 24


def rel_name(node: PlanNode) -> str:
    assert node.relation is not None
    return f"{node.schema}.{node.relation}" if node.schema else node.relation


def evidence(node: PlanNode, info: RelationInfo | None, **more: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "node": node.node_type,
        "relation": rel_name(node) if node.relation else None,
        "rows": rnd(node.rows_all),
        "rows_source": "actual" if node.actual_rows is not None else "estimated",
        "cost": node.total_cost,
    }
    if info is not None:
        ev["table_rows"] = rnd(info.rows)
        ev["table_bytes"] = info.size_bytes
    ev.update({k: v for k, v in more.items() if v is not None})
    return ev


def rnd(value: float | None) -> float | None:
    if value is None:
        return None
    return round(value, 4) if value < 1 else round(value)


def own(preds: list[Predicate], node: PlanNode) -> list[Predicate]:
    """Predicates on this scan's own columns (bare, or qualified by its alias/relation)."""
    mine = {node.alias, node.relation, None}
    return [p for p in preds if p.qualifier in mine]


def fmt_rows(value: float | None) -> str:
    return "?" if value is None else f"{value:,.0f}"


def pct(value: float | None) -> str:
    if value is None:
        return "unknown"
    if value == 0:
        return "none"
    return f"{value:.2%}" if value >= 0.0001 else f"{value:.4%}"


def selectivity_of(node: PlanNode, info: RelationInfo | None) -> float | None:
    rows = node.rows_all
    if rows is None or info is None or not info.rows:
        return None
    return min(rows / info.rows, 1.0)


def ancestors(node: PlanNode, parents: dict[int, PlanNode]) -> Iterator[PlanNode]:
    current = parents.get(id(node))
    while current is not None:
        yield current
        current = parents.get(id(current))


def ddl(node: PlanNode, keys: list[str], dialect: str) -> str:
    assert node.relation is not None
    return create_index_sql(
        node.schema, node.relation, keys, dialect="sqlite" if dialect == "sqlite" else "postgres"
    )


_INDEXABLE = ("eq", "in", "range", "null")


def indexable(preds: list[Predicate]) -> list[Predicate]:
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


def key_order(preds: list[Predicate], info: RelationInfo | None) -> list[str]:
    """Index key order: equality columns first (most distinct values first), then one range."""
    eq = [p.column for p in preds if p.kind in ("eq", "in", "null")]
    rng = [p.column for p in preds if p.kind == "range"]
    eq = list(dict.fromkeys(eq))
    if info is not None:
        eq.sort(key=lambda c: -(info.distinct_values(c) or 0))
    keys = eq + [c for c in rng[:1] if c not in eq]
    return keys


def filtered_scans_of_large(ctx: PlanContext) -> Iterator[tuple[PlanNode, RelationInfo]]:
    """Scans with a filter that test a large number of rows of a large relation: a full read
    (Seq Scan, index walk) as far as a LIMIT above lets it run, or any scan that actually read
    that many rows. A filter applied to the few rows an index condition found, or to the first
    rows of a walk a LIMIT stops early, costs little, whatever it is."""
    policy, work = ctx.policy, ctx.work
    for node in ctx.plan.nodes():
        if not node.is_scan or not node.filter:
            continue
        if not node.analyzed and not full_read(node):
            continue  # the estimate gives rows after the filter only: no figure to judge by
        if (work.rows_read(node) or 0) < policy.large_table_rows:
            continue
        info = ctx.catalog.for_node(node)
        if info is not None and policy.is_large(info):
            yield node, info


def rows_tested(ctx: PlanContext, node: PlanNode, info: RelationInfo) -> str:
    """How many rows a filtered scan tests, in words: all of the relation, or the part a LIMIT
    (or an EXISTS) above lets it read."""
    read = ctx.work.rows_read(node)
    executions = ctx.work.executions(node)
    if read is None or info.rows is None:
        return "every row"
    if executions <= 1 and read >= 0.95 * info.rows:
        return f"all {fmt_rows(info.rows)} rows"
    if executions > 1:
        return f"{fmt_rows(read)} rows over {fmt_rows(executions)} runs"
    return (
        f"~{fmt_rows(read)} of its {fmt_rows(info.rows)} rows before it has the rows it needs "
        "(a LIMIT or EXISTS above stops it)"
    )


# --- helpers of the work rules ------------------------------------------------------------------

PASS_THROUGH = frozenset(
    {"Gather", "Gather Merge", "Result", "Materialize", "Memoize", "Subquery Scan", "Limit"}
)


def work_evidence(ctx: PlanContext, node: PlanNode, **more: Any) -> dict[str, Any]:
    """Evidence of a work rule: the node, its executions, rows it read and returned."""
    work = ctx.work
    scan = node if node.is_scan else None
    info = ctx.catalog.for_node(scan) if scan is not None else None
    ev: dict[str, Any] = {
        "node": node.node_type,
        "relation": rel_name(node) if node.relation else None,
        "rows": rnd(work.rows_out(node)),
        "rows_source": "actual" if node.analyzed else "estimated",
        "loops": rnd(work.executions(node)),
        "cost": node.total_cost,
    }
    if info is not None:
        ev["table_rows"] = rnd(info.rows)
        ev["table_bytes"] = info.size_bytes
    ev.update({k: rnd(v) if isinstance(v, float) else v for k, v in more.items() if v is not None})
    return ev


def first_below(node: PlanNode, wanted: Callable[[PlanNode], bool]) -> PlanNode | None:
    """The first node under ``node`` (through pass-through nodes, sorts and partial aggregates)
    for which ``wanted`` holds."""
    for child in node.children:
        if child.parent_relationship in ("SubPlan", "InitPlan"):
            continue
        if wanted(child):
            return child
        if (
            child.node_type in PASS_THROUGH
            or child.node_type in ("Sort", "Incremental Sort", "Hash")
            or child.extra.get("Partial Mode") == "Partial"
        ):
            found = first_below(child, wanted)
            if found is not None:
                return found
    return None


def single_scan(node: PlanNode) -> PlanNode | None:
    """The one scan under ``node`` (SubPlans aside), if it reads a single relation."""
    scans = list(scans_below(node, subplans=False))
    return scans[0] if len(scans) == 1 else None


def mentions_alias(text: str, aliases: set[str]) -> bool:
    """Whether a (VERBOSE, qualified) condition refers to a column of one of ``aliases``."""
    return any(
        re.search(r'(?<![\w."])"?' + re.escape(a) + r'"?\.', text) is not None for a in aliases
    )


def aliases_in(node: PlanNode, *, subplans: bool = False) -> set[str]:
    """Aliases of the relations read in ``node``'s subtree."""
    out: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if current.alias:
            out.add(current.alias)
        elif current.relation:
            out.add(current.relation)
        stack.extend(
            c
            for c in current.children
            if subplans or c.parent_relationship not in ("SubPlan", "InitPlan")
        )
    return out


_PLAIN_OUTPUT = re.compile(r'^[\w."]+$')


def only_plain_columns(node: PlanNode) -> bool | None:
    """True when the node outputs plain columns only (a DISTINCT/GROUP BY with no aggregate),
    False when it computes something, None when the plan does not say (no VERBOSE output)."""
    output = node.extra.get("Output")
    if not output:
        return None
    return all(_PLAIN_OUTPUT.match(str(o).strip()) for o in output)


def advice_for(ctx: PlanContext, relation: str | None) -> tuple[str, str] | None:
    """(DDL, "cost a → b") of the validated, recommended index on ``relation`` (any relation
    when None), if any."""
    advice = ctx.advice
    if advice is None:
        return None
    for cand in advice.recommended:
        if (relation is None or cand.table == relation) and cand.validated:
            return cand.ddl, (
                f"validated with HypoPG: estimated cost {cand.cost_before or 0:,.0f} → "
                f"{cand.cost_after or 0:,.2f}"
            )
    return None


_NEGATED = re.compile(r"NOT \((?:ANY \(.*?)?\(?(hashed )?(SubPlan \d+)\)")


def negated_subplans(plan: Plan) -> dict[str, PlanNode]:
    """SubPlans tested under NOT (``NOT (hashed SubPlan 1)``), by name -> the node testing it."""
    out: dict[str, PlanNode] = {}
    for node in plan.nodes():
        for text in node.conditions():
            for m in _NEGATED.finditer(text):
                out.setdefault(m.group(2), node)
    return out
