"""Index candidates: what a plan filters, joins and sorts on, as indexes worth validating.

PostgreSQL's filter, index and join conditions and sort keys, or, for SQLite, the statement's
WHERE / JOIN ... ON / ORDER BY: equality columns first (most distinct values first), then one
range column; join keys; equality columns plus ORDER BY columns. ``querywatch.plans.advice``
validates them with HypoPG.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from querywatch.plans.catalog import Catalog, RelationInfo, create_index_sql
from querywatch.plans.model import Dialect, Plan, PlanNode
from querywatch.plans.policy import PlanPolicy
from querywatch.plans.predicates import Predicate, TableRef, parse_condition, statement_shape


@dataclass(slots=True)
class IndexCandidate:
    """One proposed index and, once validated, what it did to the estimated cost."""

    table: str
    keys: tuple[str, ...]  # column names, or "(expression)"
    schema: str | None = None
    dialect: Dialect = "postgres"
    reasons: list[str] = field(default_factory=list)  # "filter", "join key", "order by"
    selective: bool = False  # the plan shows a selective use (for unvalidated advice)
    validated: bool = False
    used: bool = False  # the new plan used the hypothetical index
    cost_before: float | None = None  # total cost, weighted by calls for a workload
    cost_after: float | None = None
    worst_before: float | None = (
        None  # the same, if no LIMIT or EXISTS stops early (Plan.worst_cost)
    )
    worst_after: float | None = None
    statements: int = 0  # statements whose plan used it
    recommended: bool = False
    note: str | None = None  # why not recommended, or a HypoPG error

    @property
    def key(self) -> tuple[str | None, str, tuple[str, ...]]:
        return (self.schema, self.table, self.keys)

    @property
    def improvement(self) -> float | None:
        """Fraction of the estimated cost the index removes (0.9 = 90% cheaper)."""
        if self.cost_before is None or self.cost_after is None or self.cost_before <= 0:
            return None
        return 1.0 - self.cost_after / self.cost_before

    @property
    def ddl(self) -> str:
        """``CREATE INDEX CONCURRENTLY idx_… ON schema.table (keys);`` (SQLite: no CONCURRENTLY)."""
        return create_index_sql(self.schema, self.table, self.keys, dialect=self.dialect)

    @property
    def hypothetical_ddl(self) -> str:
        return create_index_sql(
            self.schema, self.table, self.keys, dialect=self.dialect, concurrently=False
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "table": self.table,
            "columns": list(self.keys),
            "reasons": list(self.reasons),
            "ddl": self.ddl,
            "validated": self.validated,
            "used": self.used,
            "recommended": self.recommended,
            "cost_before": rounded(self.cost_before),
            "cost_after": rounded(self.cost_after),
            "improvement": None if self.improvement is None else round(self.improvement, 4),
            "worst_cost_before": rounded(self.worst_before),
            "worst_cost_after": rounded(self.worst_after),
            "statements": self.statements,
            "note": self.note,
        }


def rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def candidates_for(
    plan: Plan, catalog: Catalog, policy: PlanPolicy | None = None
) -> list[IndexCandidate]:
    """Indexes that could serve ``plan``'s filters, joins and sorts, minus existing ones."""
    policy = policy or PlanPolicy()
    if plan.dialect == "sqlite":
        found = _sqlite_candidates(plan, catalog, policy)
    else:
        found = _pg_candidates(plan, catalog, policy)
    out: dict[tuple[str | None, str, tuple[str, ...]], IndexCandidate] = {}
    for cand in found:
        info = catalog.get(cand.table, cand.schema)
        if info is None or not cand.keys or _covered(info, cand.keys):
            continue
        if (info.rows or 0) < policy.min_advice_rows:
            continue  # a small table: reading it whole is cheap, no index pays
        seen = out.get(cand.key)
        if seen is None:
            out[cand.key] = cand
        else:
            seen.reasons.extend(r for r in cand.reasons if r not in seen.reasons)
            seen.selective = seen.selective or cand.selective
    return list(out.values())[: policy.max_candidates]


def _covered(info: RelationInfo, keys: tuple[str, ...]) -> bool:
    return any(i.starts_with(keys) for i in info.usable_indexes())


def _own(preds: list[Predicate], node: PlanNode) -> list[Predicate]:
    mine = {node.alias, node.relation, None}
    return [p for p in preds if p.qualifier in mine]


def _filter_keys(preds: list[Predicate], info: RelationInfo) -> tuple[list[str], list[str]]:
    """(equality keys ordered by distinct values, range keys) usable by a btree."""
    eq: list[str] = []
    rng: list[str] = []
    for p in preds:
        if not p.top_level or p.negated or p.kind not in ("eq", "in", "range", "null"):
            continue
        key = p.column if p.wrapper is None else (f"({p.expression})" if p.expression else None)
        if key is None:
            continue
        (rng if p.kind == "range" else eq).append(key)
    eq = list(dict.fromkeys(eq))
    eq.sort(key=lambda c: -(info.distinct_values(c) or 0))
    rng = [c for c in dict.fromkeys(rng) if c not in eq]
    return eq, rng


def _pg_candidates(plan: Plan, catalog: Catalog, policy: PlanPolicy) -> list[IndexCandidate]:
    out: list[IndexCandidate] = []
    parents = plan.parents()
    join_keys = _pg_join_keys(plan)
    scans = plan.scans()
    written_order: list[str] = []
    if len(scans) == 1 and (shape := statement_shape(plan.sql, "postgres")) is not None:
        # An index may already deliver the order (no Sort node): the ORDER BY is in the text.
        directions = {desc for _q, _c, desc in shape.order_by}
        if len(shape.tables) == 1 and len(directions) <= 1:
            written_order = [c for _q, c, _d in shape.order_by]
    for node in scans:
        info = catalog.for_node(node)
        if info is None or node.relation is None:
            continue
        texts = [node.filter, node.index_cond, node.recheck_cond]
        preds = [p for t in texts for p in _own(parse_condition(t, "postgres"), node)]
        eq, rng = _filter_keys(preds, info)
        rows = node.rows_all
        selective = policy.is_large(info) and bool(
            info.rows and rows is not None and rows <= policy.selective_fraction * info.rows
        )

        def add(keys: list[str], reason: str, sel: bool, node: PlanNode = node) -> None:
            if keys:
                out.append(_candidate(node.relation or "", node.schema, keys, reason, sel))

        if eq or rng:
            add(eq + rng[:1], "filter", selective)
            if len(eq) > 1:
                add(eq[:1], "filter", selective)
        for col, join_rows in join_keys.get(node.alias or node.relation, []):
            sel = policy.is_large(info) and bool(
                info.rows
                and join_rows is not None
                and join_rows <= policy.selective_fraction * info.rows
            )
            add([*eq, col] if col not in eq else eq, "join key", sel)
            if eq:
                add([col], "join key", sel)
        order = _order_keys(node, parents) or written_order
        if order:
            limited = any(a.node_type == "Limit" for a in _ancestors(node, parents))
            add(
                [*eq, *[k for k in order if k not in eq]],
                "order by",
                limited and policy.is_large(info),
            )
    return out


def _candidate(
    table: str,
    schema: str | None,
    keys: list[str],
    reason: str,
    selective: bool,
    dialect: Dialect = "postgres",
) -> IndexCandidate:
    return IndexCandidate(
        table=table,
        schema=schema,
        keys=tuple(keys),
        dialect=dialect,
        reasons=[reason],
        selective=selective,
    )


def _pg_join_keys(plan: Plan) -> dict[str, list[tuple[str, float | None]]]:
    """alias -> [(join column, rows the join produces)] from hash/merge/join conditions."""
    out: dict[str, list[tuple[str, float | None]]] = {}
    for node in plan.nodes():
        texts = [node.hash_cond, node.merge_cond, node.join_filter]
        if node.is_scan:
            texts = [node.index_cond, node.filter]  # parameterized inner side of a nested loop
        for text in texts:
            for p in parse_condition(text, "postgres"):
                if p.kind != "join":
                    continue
                rows = node.rows_all
                if p.qualifier:
                    out.setdefault(p.qualifier, []).append((p.column, rows))
                if p.other_qualifier and p.other_column:
                    out.setdefault(p.other_qualifier, []).append((p.other_column, rows))
    return out


def _ancestors(node: PlanNode, parents: dict[int, PlanNode]) -> list[PlanNode]:
    out: list[PlanNode] = []
    current = parents.get(id(node))
    while current is not None:
        out.append(current)
        current = parents.get(id(current))
    return out


def _order_keys(scan: PlanNode, parents: dict[int, PlanNode]) -> list[str]:
    """Columns of the nearest Sort above ``scan`` when that Sort reads this relation alone."""
    for anc in _ancestors(scan, parents):
        if anc.node_type in ("Sort", "Incremental Sort"):
            if len([s for s in anc.walk() if s.is_scan]) != 1:
                return []
            keys: list[str] = []
            directions: set[bool] = set()
            for text in anc.sort_keys:
                desc = bool(re.search(r"\s+DESC\b", text))
                bare = re.sub(r"\s+(ASC|DESC|NULLS (FIRST|LAST))\b", "", text).strip()
                column = _sort_column(bare)
                if column is None or column[1] not in (scan.alias, scan.relation, None):
                    return []
                keys.append(column[0])
                directions.add(desc)
            return keys if len(directions) <= 1 else []
        if anc.is_join or anc.node_type in ("Aggregate", "WindowAgg", "Unique", "SetOp"):
            return []
    return []


def _sort_column(text: str) -> tuple[str, str | None] | None:
    try:
        tree = sqlglot.parse_one(text, read="postgres").unnest()
    except (SqlglotError, ValueError):
        return None
    if isinstance(tree, exp.Column):
        return tree.name, tree.table or None
    return None


def _sqlite_candidates(plan: Plan, catalog: Catalog, policy: PlanPolicy) -> list[IndexCandidate]:
    shape = statement_shape(plan.sql, "sqlite")
    if shape is None:
        return []
    out: list[IndexCandidate] = []
    single = shape.tables[0].alias if len(shape.tables) == 1 else None
    scans = {n.alias: n for n in plan.scans() if n.alias}
    filtered = {p.qualifier or single for p in shape.where}
    for ref in shape.tables:
        info = catalog.get(ref.name, ref.schema)
        if info is None:
            continue
        large = policy.is_large(info)
        scan = scans.get(ref.alias)
        full = scan is not None and scan.node_type == "Seq Scan"
        preds = [
            p
            for p in shape.where
            if (p.qualifier or single) == ref.alias
            or (p.qualifier is None and single is None and p.column in info.columns)
        ]
        eq, rng = _filter_keys(preds, info)
        sel = large and full and any(p.kind in ("eq", "in") for p in preds)

        def add(keys: list[str], reason: str, selective: bool, ref: TableRef = ref) -> None:
            if keys:
                out.append(_candidate(ref.name, ref.schema, keys, reason, selective, "sqlite"))

        if eq or rng:
            add(eq + rng[:1], "filter", sel)
        for p in shape.joins:
            for qual, col, other in (
                (p.qualifier, p.column, p.other_qualifier),
                (p.other_qualifier, p.other_column, p.qualifier),
            ):
                if qual == ref.alias and col:
                    add(
                        [*eq, col] if col not in eq else eq,
                        "join key",
                        large and full and other in filtered,
                    )
        order = [c for q, c, _d in shape.order_by if (q or single) == ref.alias]
        if order and len(shape.tables) == 1:
            add(
                [*eq, *[c for c in order if c not in eq]],
                "order by",
                large and plan.limit is not None,
            )
    return out


# --- validation ---------------------------------------------------------------------------------
