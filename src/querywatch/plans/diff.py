"""Plan diff: how a fingerprint's plan changed across a deploy, for the incident and its postmortem.

The question during an incident is "did the plan flip?": an index scan that became a sequential
scan, a hash join that became a nested loop, a new sort, a relation read that was not read before,
and what that did to the estimated cost. Plans come from :func:`querywatch.plans.explain.explain`
or from storage (:meth:`Plan.from_dict`); nothing here talks to a database.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from querywatch.plans.model import Plan, PlanNode

COST_CHANGE = 2.0
"""A total cost ratio at or beyond this (either way) counts as a cost change by itself."""


@dataclass(frozen=True, slots=True)
class ScanChange:
    """How one relation is read before and after (``Index Scan using i`` -> ``Seq Scan``)."""

    relation: str
    before: tuple[str, ...]
    after: tuple[str, ...]

    def __str__(self) -> str:
        left = ", ".join(f"{m} on {self.relation}" for m in self.before) or "not read"
        right = ", ".join(f"{m} on {self.relation}" for m in self.after) or "not read"
        return f"{left} → {right}"


@dataclass(slots=True)
class PlanDiff:
    """The differences between two plans of one statement."""

    before: Plan
    after: Plan
    node_types_added: dict[str, int] = field(default_factory=dict)
    node_types_removed: dict[str, int] = field(default_factory=dict)
    relations_added: list[str] = field(default_factory=list)
    relations_removed: list[str] = field(default_factory=list)
    scan_changes: list[ScanChange] = field(default_factory=list)
    join_changes: list[str] = field(default_factory=list)

    @property
    def cost_before(self) -> float | None:
        return self.before.total_cost

    @property
    def cost_after(self) -> float | None:
        return self.after.total_cost

    @property
    def cost_ratio(self) -> float | None:
        """after / before estimated total cost (None when either is unknown or zero)."""
        if not self.cost_before or self.cost_after is None:
            return None
        return self.cost_after / self.cost_before

    @property
    def shape_changed(self) -> bool:
        return bool(
            self.node_types_added
            or self.node_types_removed
            or self.relations_added
            or self.relations_removed
            or self.scan_changes
            or self.join_changes
        )

    @property
    def changed(self) -> bool:
        """The plan's shape changed, or its estimated cost moved by COST_CHANGE or more."""
        ratio = self.cost_ratio
        return self.shape_changed or (
            ratio is not None and (ratio >= COST_CHANGE or ratio <= 1 / COST_CHANGE)
        )

    @property
    def regressed(self) -> bool:
        """The new plan is estimated COST_CHANGE times dearer, or lost an index on a relation."""
        ratio = self.cost_ratio
        lost_index = any(
            any("Index" in m for m in c.before) and not any("Index" in m for m in c.after)
            for c in self.scan_changes
        )
        return lost_index or (ratio is not None and ratio >= COST_CHANGE)

    def summary(self) -> list[str]:
        """Readable lines, most telling first (access paths, joins, nodes, relations, cost)."""
        lines = [str(c) for c in self.scan_changes]
        lines += self.join_changes
        if self.node_types_added:
            lines.append("new nodes: " + _counts(self.node_types_added))
        if self.node_types_removed:
            lines.append("gone nodes: " + _counts(self.node_types_removed))
        if self.relations_added:
            lines.append("now also reads: " + ", ".join(self.relations_added))
        if self.relations_removed:
            lines.append("no longer reads: " + ", ".join(self.relations_removed))
        cost = _cost_line(self.cost_before, self.cost_after, self.cost_ratio)
        if not self.shape_changed:
            lines.insert(0, "same plan shape" + (f"; {cost}" if cost else ""))
        elif cost:
            lines.append(cost)
        return lines

    def as_dict(self) -> dict[str, Any]:
        return {
            "changed": self.changed,
            "regressed": self.regressed,
            "cost_before": self.cost_before,
            "cost_after": self.cost_after,
            "cost_ratio": None if self.cost_ratio is None else round(self.cost_ratio, 3),
            "node_types_added": dict(self.node_types_added),
            "node_types_removed": dict(self.node_types_removed),
            "relations_added": list(self.relations_added),
            "relations_removed": list(self.relations_removed),
            "scan_changes": [
                {"relation": c.relation, "before": list(c.before), "after": list(c.after)}
                for c in self.scan_changes
            ],
            "join_changes": list(self.join_changes),
            "summary": self.summary(),
        }


def diff_plans(before: Plan, after: Plan) -> PlanDiff:
    """Compare the plan before (e.g. the deploy) with the plan now."""
    types_before = Counter(n.node_type for n in before.nodes())
    types_after = Counter(n.node_type for n in after.nodes())
    access_before = _access(before)
    access_after = _access(after)
    rel_before = list(access_before)
    rel_after = list(access_after)
    changes = [
        ScanChange(rel, tuple(access_before[rel]), tuple(access_after[rel]))
        for rel in rel_before
        if rel in access_after and sorted(access_before[rel]) != sorted(access_after[rel])
    ]
    joins_before = [_join_label(n) for n in before.nodes() if n.is_join]
    joins_after = [_join_label(n) for n in after.nodes() if n.is_join]
    join_changes: list[str] = []
    if joins_before != joins_after:
        join_changes.append(
            f"joins: {', '.join(joins_before) or 'none'} → {', '.join(joins_after) or 'none'}"
        )
    return PlanDiff(
        before=before,
        after=after,
        node_types_added=dict(types_after - types_before),
        node_types_removed=dict(types_before - types_after),
        relations_added=[r for r in rel_after if r not in access_before],
        relations_removed=[r for r in rel_before if r not in access_after],
        scan_changes=changes,
        join_changes=join_changes,
    )


def _access(plan: Plan) -> dict[str, list[str]]:
    """relation -> how each read of it is done (``Index Scan using i``, ``Seq Scan``…)."""
    out: dict[str, list[str]] = {}
    for node in plan.nodes():
        if node.relation is None:
            continue
        name = f"{node.schema}.{node.relation}" if node.schema else node.relation
        out.setdefault(name, []).append(_method(node))
    return out


def _method(node: PlanNode) -> str:
    index = node.index_name
    if index is None and node.node_type == "Bitmap Heap Scan":
        names = [c.index_name for c in node.walk() if c.node_type == "Bitmap Index Scan"]
        index = ", ".join(n for n in names if n) or None
    return f"{node.node_type} using {index}" if index else node.node_type


def _join_label(node: PlanNode) -> str:
    if node.join_type and node.join_type != "Inner":
        return f"{node.node_type} ({node.join_type})"
    return node.node_type


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} x{v}" if v > 1 else k for k, v in sorted(counts.items()))


def _cost_line(before: float | None, after: float | None, ratio: float | None) -> str | None:
    if before is None or after is None:
        return None
    text = f"estimated cost {before:,.2f} → {after:,.2f}"
    if ratio is not None and ratio >= 1.05:
        text += f" ({ratio:,.1f}x dearer)"
    elif ratio is not None and ratio <= 0.95:
        text += f" ({1 / ratio:,.1f}x cheaper)" if ratio > 0 else ""
    return text
