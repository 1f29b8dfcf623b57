"""How much work each plan node does: rows read and returned over all its executions.

A DBA reads a plan by asking how much it does for what it returns. EXPLAIN gives rows per
execution; this module multiplies them out. With ANALYZE the figures are actual (rows × loops,
plus rows a filter threw away). Without, they are the planner's own estimates, walked top-down:

- a node runs once per execution of its parent, except the inner side of a Nested Loop (once per
  outer row) and a correlated SubPlan (once per row its parent evaluates it for); a hashed SubPlan,
  an InitPlan and the child of a Materialize run once (an InitPlan as far as its parent's cost
  says: ``EXISTS (…)`` stops at the first row); an InitPlan that reads a column of an outer row
  (``max(…)`` in a correlated subquery becomes one) runs again for each execution of its parent;
- a node under a LIMIT with nothing blocking in between (no Sort, Hash, plain or hashed
  Aggregate) is stopped early: PostgreSQL's own model, the LIMIT pulls ``limit / rows`` of its
  input, and every streaming node below does that fraction of its work (a scan with a filter
  keeping a fraction ``s`` of its rows reads ``limit / s`` of them). A blocking node below pays
  its input in full, and so does everything under it; a Merge Join's inputs are read as far as
  its cost says; an Incremental Sort sorts one group of its presorted input at a time, so it
  reads what is pulled from it, and at least its first group (its startup cost says how much);
- a Seq Scan (or an index scan with no index condition, or one that only skips NULLs, as the
  ``max(col)`` rewrite does) reads every row of its relation, as the catalog counts them,
  whatever its filter keeps; a walk of a partial index reads the index's
  rows only;
- a node below a Gather that is not parallel-aware runs in every process (the leader and each
  worker): its executions and rows count once per process;
- a scan of a relation PostgreSQL has never analyzed and that is smaller than 10 pages is
  estimated from a default (10 pages), not a size: its rows, and those of every node above it
  (and the executions of a loop's inner side it drives), are guesses, and rules do not judge them.

The result is right to an order of magnitude, which is what the rules' thresholds need.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from querywatch.plans.catalog import Catalog
from querywatch.plans.model import Plan, PlanNode

# Nodes that consume all their input before returning a first row.
_BLOCKING = frozenset({"Sort", "Hash", "Materialize", "SetOp"})
_SUBPLAN_REF = re.compile(r"(hashed )?(SubPlan \d+)")


class Work:
    """Per-node executions, rows returned and rows read, for one plan."""

    def __init__(self, plan: Plan, catalog: Catalog) -> None:
        self.plan = plan
        self.catalog = catalog
        self._execs: dict[int, float] = {}
        self._frac: dict[int, float] = {}
        self._procs: dict[int, float] = {}  # processes running a node below a Gather
        self._guessed: set[int] = set()  # executions rest on a row count the planner guessed
        self._parents = plan.parents()
        self._size_guessed = {
            id(n)
            for n in plan.nodes()
            if n.is_scan and not n.analyzed and _size_guessed(catalog, n)
        }
        self._hashed = {
            m.group(2)
            for n in plan.nodes()
            for text in n.conditions() + list(n.extra.get("Output") or [])
            for m in _SUBPLAN_REF.finditer(text)
            if m.group(1)
        }
        self._visit(plan.root, 1.0, 1.0, 1.0)
        for node in plan.nodes():
            if id(node) in self._size_guessed:
                self._guessed.add(id(node))
                self._guessed.update(id(a) for a in self._estimated_from(node))

    # --- what rules ask -------------------------------------------------------------------------

    def executions(self, node: PlanNode) -> float:
        """How many times the node runs, in all processes (actual loops with ANALYZE, else
        estimated); a parallel-aware node's one run is shared by the processes."""
        if node.analyzed:
            if node.parallel_aware:
                return 1.0 if node.actual_loops else 0.0
            return node.actual_loops or 0.0
        return self._execs.get(id(node), 1.0) * self._copies(node)

    def pulled_fraction(self, node: PlanNode) -> float:
        """The share of its rows the node produces before a LIMIT above it stops (1.0 when
        nothing stops it early, and for actual figures, which already show the early stop)."""
        if node.analyzed:
            return 1.0
        return self._frac.get(id(node), 1.0)

    def stopped_early(self, node: PlanNode) -> bool:
        """Whether a LIMIT above stops the node before it has produced all its rows."""
        return self.pulled_fraction(node) < 1.0

    def rows_out(self, node: PlanNode) -> float | None:
        """Rows the node returns over all its executions (None if unknown or only guessed)."""
        if self.guessed(node):
            return None
        if node.analyzed:
            if node.actual_rows is None:
                return None
            return node.actual_rows * (node.actual_loops or 0.0)
        rows = node.est_rows_all
        if rows is None:
            return None
        return rows * self._frac.get(id(node), 1.0) * self.executions(node)

    def rows_per_execution(self, node: PlanNode) -> float | None:
        """Rows one execution returns (all parallel workers), as far as its parent pulls."""
        total = self.rows_out(node)
        execs = self.executions(node)
        if total is None:
            return None
        return total / execs if execs else 0.0

    def rows_read(self, node: PlanNode) -> float | None:
        """Rows a scan reads over all its executions (before its filter), None if unknown (or
        only guessed)."""
        if self.guessed(node):
            return None
        if not node.is_scan:
            return self.rows_out(node)
        if node.analyzed:
            if node.actual_rows is None:
                return None
            removed = (node.rows_removed_by_filter or 0) + float(
                node.extra.get("Rows Removed by Index Recheck") or 0
            )
            return (node.actual_rows + removed) * (node.actual_loops or 0.0)
        per_exec = self.full_read_rows(node)
        if per_exec is None:
            per_exec = node.est_rows_all
        if per_exec is None:
            return None
        return per_exec * self._frac.get(id(node), 1.0) * self.executions(node)

    def worst_read(self, node: PlanNode) -> float | None:
        """Rows the scan reads over all its executions if nothing stops it early: what a LIMIT
        above costs when the rows it wants are not where the estimate expects them."""
        if node.analyzed or not node.is_scan:
            return self.rows_read(node)
        per_exec = self.full_read_rows(node)
        if per_exec is None:
            per_exec = node.est_rows_all
        return None if per_exec is None else per_exec * self.executions(node)

    def full_read_rows(self, node: PlanNode) -> float | None:
        """The relation's rows when the scan reads all of it (Seq Scan, index walk), else None.
        A walk of a partial index reads only the rows its predicate keeps."""
        if not reads_everything(node):
            return None
        info = self.catalog.for_node(node)
        if info is None or info.rows is None:
            return None
        index = next((i for i in info.indexes if i.name == node.index_name), None)
        if node.index_name and index is not None and index.predicate and index.rows is not None:
            grown = info.rows / info.reltuples if info.reltuples else 1.0
            return min(info.rows, index.rows * grown)
        return info.rows

    def read_below(self, node: PlanNode, *, subplans: bool = True) -> float:
        """Rows read by every scan in the node's subtree (SubPlans and InitPlans included unless
        told not to)."""
        total = 0.0
        for scan in scans_below(node, subplans=subplans):
            total += self.rows_read(scan) or 0.0
        return total

    def guessed(self, node: PlanNode) -> bool:
        """Whether the node's rows or executions rest on a planner default, not on statistics:
        the inner side of a loop over a set-returning function (planned at 1,000 rows whatever
        it returns), a scan of a never-analyzed small relation (planned at 10 pages) and every
        node whose estimate is built on it. Rules do not judge by such guesses."""
        return id(node) in self._guessed

    def _copies(self, node: PlanNode) -> float:
        """Processes that each run their own copy of the node (1 unless under a Gather and not
        parallel-aware)."""
        return 1.0 if node.parallel_aware else self._procs.get(id(node), 1.0)

    def is_hashed(self, subplan: PlanNode) -> bool:
        return str(subplan.extra.get("Subplan Name")) in self._hashed

    def parent(self, node: PlanNode) -> PlanNode | None:
        return self._parents.get(id(node))

    def _estimated_from(self, node: PlanNode) -> Iterator[PlanNode]:
        """The nodes whose row estimate is built on ``node``'s: its ancestors up to the root of
        its (sub)query (a SubPlan's or InitPlan's rows do not size its parent)."""
        current = node
        while current.parent_relationship not in _SIDE:
            parent = self._parents.get(id(current))
            if parent is None:
                return
            yield parent
            current = parent

    # --- the estimate ---------------------------------------------------------------------------

    def _visit(self, node: PlanNode, procs: float, execs: float, frac: float) -> None:
        self._execs[id(node)] = execs
        self._frac[id(node)] = frac
        self._procs[id(node)] = procs
        if node.node_type in ("Gather", "Gather Merge"):
            planned = float(node.extra.get("Workers Planned") or 0)
            procs = planned + max(0.0, 1.0 - 0.3 * planned) if planned else 1.0
        regular = [c for c in node.children if c.parent_relationship not in _SIDE]
        for child in node.children:
            rel = child.parent_relationship
            if rel == "InitPlan":
                # Run once (again per execution of its parent when it reads an outer row's
                # column); an EXISTS stops at its first row: the parent's cost carries the
                # share of the InitPlan the planner expects to run.
                runs = execs if self._correlated(child) else min(execs, 1.0)
                self._visit(child, procs, runs, _cost_share(node, child))
            elif rel == "SubPlan":
                if self.is_hashed(child):
                    self._visit(child, procs, min(execs, 1.0), 1.0)
                else:
                    runs = self._evaluations(node, regular, child)
                    self._visit(child, procs, runs * execs * frac, 1.0)
        if not regular:
            return
        kind = node.node_type
        if kind == "Nested Loop" and len(regular) == 2:
            outer, inner = regular
            self._visit(outer, procs, execs, frac)
            outer_rows = (outer.est_rows or 1.0) * frac  # per process: the loop runs in each
            self._visit(inner, procs, execs * max(outer_rows, 1.0), 1.0)
            if (
                id(node) in self._guessed
                or _guessed_rows(outer)
                or any(id(n) in self._size_guessed for n in outer.walk())
            ):
                self._guessed.update(id(n) for n in inner.walk())
                self._guessed.add(id(node))
            return
        if kind == "Limit":
            child = regular[0]
            wanted = (node.est_rows_all or 0.0) + float(self.plan.offset or 0)
            have = child.est_rows_all or 0.0
            share = min(1.0, wanted / have) if have > 0 else 1.0
            self._visit(child, procs, execs, frac * share)
            for other in regular[1:]:
                self._visit(other, procs, execs, frac)
            return
        if kind == "Merge Join":
            # A merge stops when one side runs out: the planner's cost says how far it reads.
            for child in regular:
                self._visit(child, procs, execs, frac * _cost_share(node, child))
            return
        if kind == "Hash Join" and len(regular) == 2:
            self._visit(regular[0], procs, execs, frac)
            self._visit(regular[1], procs, execs, 1.0)
            return
        if kind == "Incremental Sort" and len(regular) == 1:
            # Sorts group by group: reads what is pulled, and at least the first group.
            child = regular[0]
            self._visit(child, procs, execs, max(frac, _first_group_share(node, child)))
            return
        if kind == "Materialize":
            for child in regular:
                self._visit(child, procs, min(execs, 1.0), 1.0)
            return
        blocking = kind in _BLOCKING or (
            kind == "Aggregate" and node.extra.get("Strategy") in ("Plain", "Hashed", "Mixed")
        )
        for child in regular:
            self._visit(child, procs, execs, 1.0 if blocking else frac)
        if id(node) in self._guessed:
            for child in node.children:
                self._guessed.update(id(n) for n in child.walk())

    def _evaluations(self, node: PlanNode, regular: list[PlanNode], subplan: PlanNode) -> float:
        """Rows a node evaluates a correlated SubPlan for, per execution of the node in one
        process: every row it reads when a condition tests the SubPlan, else every row it
        returns."""
        name = str(subplan.extra.get("Subplan Name") or "")
        tested = bool(name) and any(
            re.search(re.escape(name) + r"\b", text) for text in node.conditions()
        )
        own = node.est_rows or 1.0  # per process: a parallel-aware node's share
        if not tested:
            return own
        if node.is_scan:
            full = self.full_read_rows(node)
            return full / node.parallel_divisor if full is not None else own
        if regular:
            return max(c.est_rows or 0.0 for c in regular) or own
        return own

    def _correlated(self, initplan: PlanNode) -> bool:
        """Whether an InitPlan's conditions read a column of a relation outside it (VERBOSE
        output qualifies every column): PostgreSQL then runs it again whenever that row
        changes."""
        inside = {n.alias or n.relation for n in initplan.walk() if n.alias or n.relation}
        outside = {
            n.alias or n.relation
            for n in self.plan.nodes()
            if (n.alias or n.relation) and (n.alias or n.relation) not in inside
        }
        if not outside:
            return False
        return any(_mentions(text, outside) for n in initplan.walk() for text in n.conditions())


_SIDE = ("InitPlan", "SubPlan")


def _mentions(text: str, aliases: set[str | None]) -> bool:
    return any(
        a is not None and re.search(r'(?<![\w."])"?' + re.escape(a) + r'"?\.', text) is not None
        for a in aliases
    )


def _first_group_share(node: PlanNode, child: PlanNode) -> float:
    """The share of its input an Incremental Sort reads before its first row: its first group,
    as its startup cost (the child's startup plus reading and sorting that group) says."""
    if node.startup_cost is None or child.total_cost is None:
        return 1.0
    start = child.startup_cost or 0.0
    run = child.total_cost - start
    if run <= 0:
        return 1.0
    return min(1.0, max(0.0, node.startup_cost - start) / run)


def _cost_share(parent: PlanNode, child: PlanNode) -> float:
    """The share of ``child``'s rows ``parent`` pulls, as the planner costed it."""
    if not parent.total_cost or not child.total_cost or child.total_cost <= 0:
        return 1.0
    return min(1.0, parent.total_cost / child.total_cost)


def _size_guessed(catalog: Catalog, scan: PlanNode) -> bool:
    info = catalog.for_node(scan)
    return info is not None and info.size_guessed


def _guessed_rows(node: PlanNode) -> bool:
    """Rows estimated without statistics: a plain EXPLAIN of a set-returning function."""
    return not node.analyzed and any(
        n.node_type in ("Function Scan", "Table Function Scan") for n in node.walk()
    )


_NOT_NULL_ONLY = re.compile(r'^\(*(?:[\w"]+\.)?[\w"]+ IS NOT NULL\)*$')


def reads_everything(node: PlanNode) -> bool:
    """A Seq Scan, or an index scan with no index condition or one that only skips NULLs (the
    ``max(col)`` rewrite's ``col IS NOT NULL``): it walks the whole index."""
    if node.node_type == "Seq Scan":
        return True
    if node.node_type not in ("Index Scan", "Index Only Scan"):
        return False
    return not node.index_cond or _NOT_NULL_ONLY.match(node.index_cond.strip()) is not None


def scans_below(node: PlanNode, *, subplans: bool = True) -> Iterator[PlanNode]:
    """Scans in the node's subtree, optionally without SubPlans and InitPlans."""
    if node.is_scan:
        yield node
    for child in node.children:
        if not subplans and child.parent_relationship in _SIDE:
            continue
        yield from scans_below(child, subplans=subplans)
