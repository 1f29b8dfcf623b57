"""``querywatch.baseline.json``: what the gate accepted, committed next to the code.

Per fingerprint: the normalized statement, its plan shape (a hash of node types, relations and
indexes) with the access method per relation, its cost class (the order of magnitude of the plan's
total cost), the most calls one test made, and the finding rule ids accepted for it. The file is
written with sorted keys, two-space indents and no timestamps, so a pull request's diff shows
exactly which queries and findings changed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from querywatch.atomic import write_atomic
from querywatch.gate.collect import GateInputError
from querywatch.plans.model import Plan, PlanNode

BASELINE_VERSION = 1
DEFAULT_BASELINE_PATH = Path("querywatch.baseline.json")

ACCESS_RANK = {
    "Tid Scan": ("tid", 0),
    "Tid Range Scan": ("tid", 0),
    "Index Only Scan": ("index-only", 0),
    "Index Scan": ("index", 1),
    "Bitmap Heap Scan": ("bitmap", 2),
    "Sample Scan": ("sample", 3),
    "Seq Scan": ("seq", 3),
}
"""How a relation is read, from best to worst; a plan that reads a relation worse regressed."""
RANK = {name: rank for name, rank in ACCESS_RANK.values()} | {"full-index": 3}


@dataclass(frozen=True, slots=True)
class PlanSignature:
    """What the baseline keeps of a plan: a stable ``shape`` hash and each relation's access."""

    shape: str
    access: dict[str, str] = field(default_factory=dict)  # relation -> "index", "seq", ...
    cost: float | None = None

    @property
    def cost_class(self) -> int | None:
        return cost_class(self.cost)


def cost_class(cost: float | None) -> int | None:
    """The order of magnitude of a total plan cost: 0 below 10, 1 below 100, and so on."""
    if cost is None or math.isnan(cost):
        return None
    return 0 if cost < 10 else math.floor(math.log10(cost))


def access_of(node: PlanNode) -> str:
    """How ``node`` reads its relation. SQLite's "SCAN t USING [COVERING] INDEX i" walks the
    whole index: a full scan, whatever the node type says."""
    if (node.detail or "").startswith("SCAN ") and node.index_name:
        return "full-index"
    return ACCESS_RANK.get(node.node_type, (node.node_type.lower().replace(" ", "-"), 1))[0]


def plan_signature(plan: Plan) -> PlanSignature:
    """Node types, relations and indexes in plan order, hashed; estimates are left out so the
    shape changes only when the planner picks a different strategy."""
    parts: list[str] = []
    access: dict[str, str] = {}

    def visit(node: PlanNode, depth: int) -> None:
        parts.append(f"{depth}:{node.node_type}:{node.relation or ''}:{node.index_name or ''}")
        if node.is_scan and node.relation is not None:
            plain = node.schema in (None, "public", "main")
            name = node.relation if plain else f"{node.schema}.{node.relation}"
            mine = access_of(node)
            known = access.get(name)
            if known is None or RANK.get(mine, 1) > RANK.get(known, 1):
                access[name] = mine  # the worst way the plan reads it
        for child in node.children:
            visit(child, depth + 1)

    visit(plan.root, 0)
    shape = hashlib.blake2b("\n".join(parts).encode(), digest_size=8).hexdigest()
    return PlanSignature(shape, access, plan.total_cost)


def worse_access(before: dict[str, str], after: dict[str, str]) -> list[tuple[str, str, str]]:
    """(relation, before, after) for every relation the new plan reads worse (or newly by a full
    scan)."""
    worse = []
    for relation, now in sorted(after.items()):
        was = before.get(relation)
        if was is None:
            if RANK.get(now, 1) >= RANK["seq"]:
                worse.append((relation, "not read", now))
        elif RANK.get(now, 1) > RANK.get(was, 1):
            worse.append((relation, was, now))
    return worse


@dataclass(slots=True)
class BaselineEntry:
    normalized: str
    dialect: str
    plan_shape: str | None = None
    access: dict[str, str] = field(default_factory=dict)
    cost_class: int | None = None
    calls_per_test: int = 0
    accepted: list[str] = field(default_factory=list)  # finding rule ids

    def to_json(self) -> dict[str, Any]:
        return {
            "normalized": self.normalized,
            "dialect": self.dialect,
            "plan_shape": self.plan_shape,
            "access": dict(sorted(self.access.items())),
            "cost_class": self.cost_class,
            "calls_per_test": self.calls_per_test,
            "accepted": sorted(set(self.accepted)),
        }


@dataclass(slots=True)
class GateBaseline:
    entries: dict[str, BaselineEntry] = field(default_factory=dict)
    path: Path | None = None
    exists: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "version": BASELINE_VERSION,
            "about": "querywatch CI gate baseline: accepted queries, plans and findings. "
            "Update with `querywatch check --update-baseline` and review the diff.",
            "fingerprints": {fp: e.to_json() for fp, e in sorted(self.entries.items())},
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    def save(self, path: str | os.PathLike[str]) -> None:
        target = Path(path)
        try:
            write_atomic(target, self.dumps(), make_parents=True)
        except OSError as exc:
            raise GateInputError(
                f"cannot write the baseline {target}: {exc.strerror or exc}"
            ) from None
        self.path = target
        self.exists = True

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> GateBaseline:
        """The baseline at ``path``; an empty one when the file does not exist yet."""
        source = Path(path)
        try:
            text = source.read_text()
        except FileNotFoundError:
            return cls(path=source, exists=False)
        except (OSError, UnicodeDecodeError) as exc:
            raise GateInputError(f"{source}: cannot read the baseline: {exc}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise GateInputError(
                f"{source}: the baseline is not valid JSON (line {exc.lineno}: {exc.msg});"
                " fix it or recreate it with `querywatch check --update-baseline`"
            ) from None
        return cls.from_json(data, source=source)

    @classmethod
    def from_json(cls, data: Any, *, source: Path) -> GateBaseline:
        if not isinstance(data, dict) or "version" not in data:
            raise GateInputError(f"{source}: not a querywatch baseline (no version field)")
        if data["version"] != BASELINE_VERSION:
            raise GateInputError(
                f"{source}: baseline version {data['version']!r} is not supported (this"
                f" querywatch reads version {BASELINE_VERSION}); recreate it with"
                " `querywatch check --update-baseline`"
            )
        entries: dict[str, BaselineEntry] = {}
        try:
            raw = data["fingerprints"]
            if not isinstance(raw, dict):
                raise TypeError("fingerprints is not an object")
            for fp, e in raw.items():
                cc = e.get("cost_class")
                entries[str(fp)] = BaselineEntry(
                    normalized=str(e["normalized"]),
                    dialect=str(e.get("dialect", "postgres")),
                    plan_shape=None if e.get("plan_shape") is None else str(e["plan_shape"]),
                    access={str(k): str(v) for k, v in (e.get("access") or {}).items()},
                    cost_class=None if cc is None else int(cc),
                    calls_per_test=int(e.get("calls_per_test", 0)),
                    accepted=[str(r) for r in e.get("accepted", [])],
                )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            why = f"missing field {exc.args[0]!r}" if isinstance(exc, KeyError) else str(exc)
            raise GateInputError(
                f"{source}: the baseline is damaged ({why}); fix it or recreate it with"
                " `querywatch check --update-baseline`"
            ) from None
        return cls(entries=entries, path=source, exists=True)
