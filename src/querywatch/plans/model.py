"""One plan model for every dialect: what EXPLAIN said, in a shape the rules and the diff can read.

PostgreSQL's ``EXPLAIN (FORMAT JSON)`` and SQLite's ``EXPLAIN QUERY PLAN`` land in the same
:class:`PlanNode` tree. Figures a dialect does not give (SQLite has no row or cost estimates, a
plain EXPLAIN has no actual rows) stay ``None``: a rule that needs them then says nothing rather
than guessing. Plans round-trip through :meth:`Plan.as_dict` / :meth:`Plan.from_dict`, so a plan
captured before a deploy can be stored and diffed against the plan after it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Any, Literal

Dialect = Literal["postgres", "sqlite"]

SCAN_TYPES = frozenset(
    {
        "Seq Scan",
        "Index Scan",
        "Index Only Scan",
        "Bitmap Heap Scan",
        "Tid Scan",
        "Tid Range Scan",
        "Sample Scan",
    }
)
"""Node types that read a relation (``Bitmap Index Scan`` reads an index, not the table)."""

JOIN_TYPES = frozenset({"Nested Loop", "Hash Join", "Merge Join"})


@dataclass(slots=True, eq=False)
class PlanNode:
    """One plan node. Estimates are per loop, as EXPLAIN reports them; so are actual rows."""

    node_type: str
    relation: str | None = None
    schema: str | None = None
    alias: str | None = None
    index_name: str | None = None
    join_type: str | None = None
    parent_relationship: str | None = None
    filter: str | None = None
    index_cond: str | None = None
    recheck_cond: str | None = None
    join_filter: str | None = None
    hash_cond: str | None = None
    merge_cond: str | None = None
    sort_keys: list[str] = field(default_factory=list)
    est_rows: float | None = None
    startup_cost: float | None = None
    total_cost: float | None = None
    width: int | None = None
    actual_rows: float | None = None
    actual_loops: float | None = None
    actual_startup_ms: float | None = None
    actual_total_ms: float | None = None
    rows_removed_by_filter: float | None = None
    sort_method: str | None = None
    sort_space_type: str | None = None
    sort_space_kb: float | None = None
    hash_batches: int | None = None
    original_hash_batches: int | None = None
    peak_memory_kb: float | None = None
    disk_usage_kb: float | None = None
    parallel_aware: bool = False
    workers: int | None = None  # workers planned by the Gather above a parallel-aware node
    detail: str | None = None  # SQLite's EXPLAIN QUERY PLAN line, verbatim
    extra: dict[str, Any] = field(default_factory=dict)
    children: list[PlanNode] = field(default_factory=list)

    def walk(self) -> Iterator[PlanNode]:
        """This node and every node below it, parents before children."""
        yield self
        for child in self.children:
            yield from child.walk()

    @property
    def is_scan(self) -> bool:
        return self.node_type in SCAN_TYPES and self.relation is not None

    @property
    def is_join(self) -> bool:
        return self.node_type in JOIN_TYPES

    @property
    def analyzed(self) -> bool:
        return self.actual_loops is not None

    @property
    def never_executed(self) -> bool:
        return self.actual_loops == 0

    def conditions(self) -> list[str]:
        """Every condition text on this node (filters, index and join conditions)."""
        return [
            c
            for c in (
                self.index_cond,
                self.recheck_cond,
                self.filter,
                self.join_filter,
                self.hash_cond,
                self.merge_cond,
            )
            if c
        ]

    @property
    def parallel_divisor(self) -> float:
        """How PostgreSQL splits a parallel node's rows between processes (its own formula)."""
        if not self.parallel_aware or not self.workers:
            return 1.0
        divisor = float(self.workers)
        leader = 1.0 - 0.3 * self.workers
        return divisor + leader if leader > 0 else divisor

    @property
    def est_rows_all(self) -> float | None:
        """Estimated rows of one execution across all parallel workers."""
        return None if self.est_rows is None else self.est_rows * self.parallel_divisor

    @property
    def actual_rows_all(self) -> float | None:
        """Actual rows of one execution (all parallel workers), or None without ANALYZE."""
        if self.actual_rows is None:
            return None
        if self.parallel_aware and self.actual_loops:
            return self.actual_rows * self.actual_loops
        return self.actual_rows

    @property
    def rows_all(self) -> float | None:
        """Actual rows when known, else the estimate (one execution, all workers)."""
        actual = self.actual_rows_all
        return actual if actual is not None else self.est_rows_all

    def label(self) -> str:
        """``Index Scan using orders_pkey on public.orders o``: what EXPLAIN's text form shows."""
        text = self.node_type
        if self.join_type and self.is_join and self.join_type != "Inner":
            text = f"{self.node_type} ({self.join_type})"
        if self.index_name and self.node_type != "Bitmap Index Scan":
            text += f" using {self.index_name}"
        elif self.index_name:
            text += f" on {self.index_name}"
        if self.relation:
            name = f"{self.schema}.{self.relation}" if self.schema else self.relation
            text += f" on {name}"
            if self.alias and self.alias != self.relation:
                text += f" {self.alias}"
        return text

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "children":
                out["children"] = [c.as_dict() for c in self.children]
            elif value is None or value == [] or value == {} or value is False:
                continue
            else:
                out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlanNode:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known and k != "children"}
        node = cls(**kwargs)
        node.children = [cls.from_dict(c) for c in data.get("children", [])]
        return node


@dataclass(slots=True, eq=False)
class Plan:
    """A statement's plan and the context it was made in (settings, whether it ran, its limits)."""

    root: PlanNode
    dialect: Dialect
    sql: str
    settings: dict[str, str] = field(default_factory=dict)  # non-default planner settings
    planning_ms: float | None = None
    execution_ms: float | None = None
    analyzed: bool = False  # EXPLAIN ANALYZE: actual rows and times are known
    generic: bool = False  # planned with unknown parameter values ($1…)
    work_mem_kb: int | None = None
    hash_mem_multiplier: float | None = None
    limit: int | None = None  # the statement's own LIMIT / OFFSET when they are literals
    offset: int | None = None
    server_version: str | None = None

    def nodes(self) -> Iterator[PlanNode]:
        return self.root.walk()

    def scans(self) -> list[PlanNode]:
        """Nodes that read a relation, in plan order."""
        return [n for n in self.nodes() if n.is_scan]

    def relations(self) -> list[tuple[str | None, str]]:
        """(schema, relation) of every relation the plan reads, first appearance first."""
        seen: dict[tuple[str | None, str], None] = {}
        for n in self.nodes():
            if n.relation is not None:
                seen.setdefault((n.schema, n.relation), None)
        return list(seen)

    def aliases(self) -> dict[str, PlanNode]:
        """Alias (or relation name) -> the scan node that reads it."""
        out: dict[str, PlanNode] = {}
        for n in self.nodes():
            if n.relation is not None:
                out.setdefault(n.alias or n.relation, n)
                out.setdefault(n.relation, n)
        return out

    def parents(self) -> dict[int, PlanNode]:
        """``id(node)`` -> its parent node."""
        out: dict[int, PlanNode] = {}
        for n in self.nodes():
            for c in n.children:
                out[id(c)] = n
        return out

    @property
    def total_cost(self) -> float | None:
        return self.root.total_cost

    def index_names(self) -> set[str]:
        return {n.index_name for n in self.nodes() if n.index_name}

    def early_stops(self) -> list[EarlyStop]:
        """Where the plan's cost counts on stopping early and the stop may not come, outermost
        first: a LIMIT that pulls part of a streaming input, an InitPlan (``EXISTS (…)``) its
        parent runs only until the first row, when that input throws rows away (a filter, a
        join) so that the rows wanted may be late or absent; an input that passes on every row
        it reads (an index condition alone) stops when told. Only nodes that run once are
        looked at (a per-row SubPlan or a loop's inner side is judged by its executions)."""
        out: list[EarlyStop] = []
        _collect_stops(self.root, out)
        return out

    @property
    def worst_cost(self) -> float | None:
        """The plan's estimated cost if no early stop comes (the rows a LIMIT or EXISTS wants
        are not there, or at the far end): its total cost plus what each early stop saves."""
        if self.root.total_cost is None:
            return None
        return self.root.total_cost + sum(s.saved_cost for s in self.early_stops())

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "dialect": self.dialect,
            "sql": self.sql,
            "analyzed": self.analyzed,
            "generic": self.generic,
            "total_cost": self.total_cost,
            "planning_ms": self.planning_ms,
            "execution_ms": self.execution_ms,
            "settings": dict(self.settings),
            "work_mem_kb": self.work_mem_kb,
            "hash_mem_multiplier": self.hash_mem_multiplier,
            "limit": self.limit,
            "offset": self.offset,
            "server_version": self.server_version,
            "root": self.root.as_dict(),
        }
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        return cls(
            root=PlanNode.from_dict(data["root"]),
            dialect=data["dialect"],
            sql=data.get("sql", ""),
            settings=dict(data.get("settings") or {}),
            planning_ms=data.get("planning_ms"),
            execution_ms=data.get("execution_ms"),
            analyzed=bool(data.get("analyzed")),
            generic=bool(data.get("generic")),
            work_mem_kb=data.get("work_mem_kb"),
            hash_mem_multiplier=data.get("hash_mem_multiplier"),
            limit=data.get("limit"),
            offset=data.get("offset"),
            server_version=data.get("server_version"),
        )


@dataclass(frozen=True, slots=True)
class EarlyStop:
    """A node run only until its consumer has enough rows: ``cut`` under ``stopper`` (a Limit,
    or the node an InitPlan belongs to). ``saved_cost`` is the cut node's cost the plan does not
    pay (its full total cost minus what the stopper charges)."""

    stopper: PlanNode
    cut: PlanNode
    saved_cost: float


def _collect_stops(node: PlanNode, out: list[EarlyStop]) -> None:
    regular = [c for c in node.children if c.parent_relationship not in ("InitPlan", "SubPlan")]
    for child in node.children:
        if child.parent_relationship == "InitPlan":
            saved = _saved(node, child)
            if saved > 0:
                out.append(EarlyStop(node, child, saved))
            _collect_stops(child, out)
    if node.node_type == "Limit" and regular:
        saved = _saved(node, regular[0])
        if saved > 0:
            out.append(EarlyStop(node, regular[0], saved))
    if node.node_type == "Nested Loop" and len(regular) == 2:
        regular = regular[:1]  # the inner side runs per outer row
    for child in regular:
        _collect_stops(child, out)


def _saved(stopper: PlanNode, cut: PlanNode) -> float:
    if stopper.total_cost is None or cut.total_cost is None or not _discards(cut):
        return 0.0
    return max(0.0, cut.total_cost - stopper.total_cost)


def _discards(node: PlanNode) -> bool:
    """Whether the node, or a node feeding it (SubPlans and InitPlans aside), reads rows it does
    not pass on: a filter, a join filter, an inner, semi or anti join."""
    if node.filter or node.join_filter or node.join_type in ("Inner", "Semi", "Anti"):
        return True
    return any(
        _discards(c) for c in node.children if c.parent_relationship not in ("InitPlan", "SubPlan")
    )


def node_from_postgres(raw: dict[str, Any], workers: int | None = None) -> PlanNode:
    """One node of ``EXPLAIN (FORMAT JSON)`` output, children included."""
    if raw.get("Node Type") in ("Gather", "Gather Merge"):
        below = raw.get("Workers Planned")
        child_workers = int(below) if below is not None else workers
    else:
        child_workers = workers
    parallel = bool(raw.get("Parallel Aware"))
    node = PlanNode(
        node_type=str(raw.get("Node Type", "?")),
        relation=raw.get("Relation Name"),
        schema=raw.get("Schema"),
        alias=raw.get("Alias"),
        index_name=raw.get("Index Name"),
        join_type=raw.get("Join Type"),
        parent_relationship=raw.get("Parent Relationship"),
        filter=raw.get("Filter"),
        index_cond=raw.get("Index Cond"),
        recheck_cond=raw.get("Recheck Cond"),
        join_filter=raw.get("Join Filter"),
        hash_cond=raw.get("Hash Cond"),
        merge_cond=raw.get("Merge Cond"),
        sort_keys=list(raw.get("Sort Key") or []),
        est_rows=_num(raw.get("Plan Rows")),
        startup_cost=_num(raw.get("Startup Cost")),
        total_cost=_num(raw.get("Total Cost")),
        width=_int(raw.get("Plan Width")),
        actual_rows=_num(raw.get("Actual Rows")),
        actual_loops=_num(raw.get("Actual Loops")),
        actual_startup_ms=_num(raw.get("Actual Startup Time")),
        actual_total_ms=_num(raw.get("Actual Total Time")),
        rows_removed_by_filter=_num(raw.get("Rows Removed by Filter")),
        sort_method=raw.get("Sort Method"),
        sort_space_type=raw.get("Sort Space Type"),
        sort_space_kb=_num(raw.get("Sort Space Used")),
        hash_batches=_int(raw.get("Hash Batches") or raw.get("HashAgg Batches")),
        original_hash_batches=_int(raw.get("Original Hash Batches")),
        peak_memory_kb=_num(raw.get("Peak Memory Usage")),
        disk_usage_kb=_num(raw.get("Disk Usage")),
        parallel_aware=parallel,
        workers=workers if parallel else None,
    )
    for key in (
        "Strategy",
        "Subplan Name",
        "Workers Planned",
        "Scan Direction",
        "Heap Fetches",
        "Rows Removed by Index Recheck",
        "Rows Removed by Join Filter",
        "Cache Hits",
        "Cache Misses",
        "Inner Unique",
        "Partial Mode",
        "Operation",  # ModifyTable: Insert, Update, Delete, Merge
    ):
        if key in raw:
            node.extra[key] = raw[key]
    if node.node_type in ("Aggregate", "Group", "Unique", "Result") and "Output" in raw:
        node.extra["Output"] = list(raw["Output"])  # aggregate calls vs plain columns
    for key in ("Workers",):
        if key in raw:  # parallel workers' own sort figures (ANALYZE)
            node.extra[key] = raw[key]
    node.children = [node_from_postgres(c, child_workers) for c in raw.get("Plans") or []]
    return node


def _num(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int | None:
    number = _num(value)
    return None if number is None else int(number)
