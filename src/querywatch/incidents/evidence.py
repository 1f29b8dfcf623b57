"""Plan evidence on an incident, as stored and as read: the culprit's plan now, its findings, its
index advice, and how its plan differs from the one before the deploy.

:class:`PlanEvidence` is what ``Incident.plans`` holds per culprit fingerprint; the incident view
and the postmortem read it through the properties here. Gathering it (EXPLAIN, rules, advice, diff)
is :mod:`querywatch.incidents.evidence_gather`; this module loads nothing of that machinery, so a
view reads evidence without psycopg or sqlglot.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from querywatch.plans.model import Dialect, Plan, PlanNode

OUTLINE_NODES = 12
"""Plan nodes shown in an outline; deeper plans end with "… N more nodes"."""


def utc(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


@dataclass(slots=True)
class PlanEvidence:
    """What the plans say about one culprit, as stored on the incident (``Incident.plans``).

    ``plan`` is the plan now (``Plan.as_dict()``), ``findings`` the plan rules' findings
    (``Finding.as_dict()``), ``advice`` the index advice (``Advice.as_dict()``), ``diff`` the
    plan diff (``PlanDiff.as_dict()``) against ``against``: which plan it was compared with
    (``fingerprint``, ``sql``, ``why``: "same query" or "replaced query", ``explained_at``,
    ``when``: "before deploy" or "now", ``deploy_id``, ``plan``). ``logged`` is the plan the log
    showed at the time (auto_explain, kept by `digest --store`: ``at``, ``duration_ms``,
    ``format``, ``text``, and ``plan``, a ``Plan.as_dict()`` when the log was JSON). ``notes``
    say what could not be done and why.
    """

    fingerprint: str
    sql: str
    target: str = ""
    dialect: str | None = None
    explained_at: float | None = None
    plan: dict[str, Any] | None = None
    findings: list[dict[str, Any]] = field(default_factory=list)
    advice: dict[str, Any] | None = None
    diff: dict[str, Any] | None = None
    against: dict[str, Any] | None = None
    logged: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "sql": self.sql,
            "target": self.target,
            "dialect": self.dialect,
            "explained_at": self.explained_at,
            "plan": self.plan,
            "findings": list(self.findings),
            "advice": self.advice,
            "diff": self.diff,
            "against": self.against,
            "logged": self.logged,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlanEvidence:
        explained = data.get("explained_at")
        return cls(
            fingerprint=str(data["fingerprint"]),
            sql=str(data.get("sql", "")),
            target=str(data.get("target", "")),
            dialect=data.get("dialect"),
            explained_at=None if explained is None else float(explained),
            plan=data.get("plan"),
            findings=[dict(f) for f in data.get("findings", ())],
            advice=data.get("advice"),
            diff=data.get("diff"),
            against=data.get("against"),
            logged=data.get("logged"),
            notes=[str(n) for n in data.get("notes", ())],
        )

    # -- reading it (the incident view and the postmortem) ----------------------------------------

    @property
    def source(self) -> str:
        """Where the figures of the plan now come from."""
        if self.explained_at is None:
            return "no EXPLAIN"
        return f"EXPLAIN at {utc(self.explained_at)} on {self.target}"

    @property
    def logged_source(self) -> str | None:
        """Where the logged plan comes from, e.g. "auto_explain at … UTC (812 ms)"."""
        a = self.logged
        if not a:
            return None
        at = f" at {utc(float(a['at']))}" if a.get("at") else ""
        ms = a.get("duration_ms")
        took = f" ({float(ms):,.0f} ms)" if isinstance(ms, int | float) else ""
        return f"the log's auto_explain plan{at}{took}"

    def logged_outline(self, limit: int = OUTLINE_NODES) -> list[str]:
        """The logged plan, one line per node (its text as logged when it was not JSON)."""
        a = self.logged or {}
        if a.get("plan"):
            return plan_outline(a["plan"], limit)
        lines = str(a.get("text") or "").splitlines()
        return lines[:limit] + (
            [f"… {len(lines) - limit} more lines"] if len(lines) > limit else []
        )

    @property
    def against_source(self) -> str | None:
        """Where the earlier plan comes from, e.g. "EXPLAIN at … UTC, when deploy d2 was first
        seen"."""
        a = self.against
        if not a or a.get("explained_at") is None:
            return None
        text = f"EXPLAIN at {utc(float(a['explained_at']))}"
        if a.get("when") == "before deploy" and a.get("deploy_id"):
            lag = a.get("lag_s")
            after = (
                f", {float(lag):,.0f} s after it started" if isinstance(lag, int | float) else ""
            )
            text += f", when deploy {a['deploy_id']} was first seen{after}"
        elif a.get("when") == "now":
            text += " (explained with the evidence: no plan was kept before the deploy)"
        return text

    @property
    def against_label(self) -> str | None:
        """``the same query before deploy d2`` / ``the query it replaced (<sql>)``."""
        a = self.against
        if not a:
            return None
        if a.get("why") == "replaced query":
            return "the query it replaced"
        deploy = f" before deploy {a['deploy_id']}" if a.get("deploy_id") else " before"
        return "its plan" + deploy

    @property
    def diff_summary(self) -> list[str]:
        return [str(x) for x in (self.diff or {}).get("summary", ())]

    @property
    def recommended(self) -> list[dict[str, Any]]:
        """Index advice HypoPG validated: each has ``ddl``, ``cost_before``, ``cost_after``."""
        return [dict(c) for c in (self.advice or {}).get("recommended", ())]

    @property
    def unvalidated(self) -> list[dict[str, Any]]:
        """Candidates no hypothetical index could check (no HypoPG, or SQLite)."""
        advice = self.advice or {}
        if advice.get("validated"):
            return []
        return [dict(c) for c in advice.get("candidates", ())]

    @property
    def advice_note(self) -> str | None:
        note = (self.advice or {}).get("note")
        return None if note is None else str(note)

    def outline(self, limit: int = OUTLINE_NODES) -> list[str]:
        """The plan now, one line per node, indented by depth."""
        return plan_outline(self.plan, limit)

    def before_outline(self, limit: int = OUTLINE_NODES) -> list[str]:
        """The earlier plan the diff compared with, one line per node."""
        return plan_outline((self.against or {}).get("plan"), limit)


def plan_outline(data: dict[str, Any] | None, limit: int = OUTLINE_NODES) -> list[str]:
    """A stored plan as short lines: SQLite's own EXPLAIN QUERY PLAN text, or PostgreSQL's node
    label with its estimated cost and rows."""
    if not data:
        return []
    plan = Plan.from_dict(data)
    out: list[str] = []
    if plan.dialect == "sqlite" and plan.root.detail is None:  # the tree's synthetic root
        walked = [x for child in plan.root.children for x in _depths(child, 0)]
    else:
        walked = list(_depths(plan.root, 0))
    for node, depth in walked[:limit]:
        out.append("  " * depth + _node_line(node, plan.dialect))
    if len(walked) > limit:
        out.append(f"… {len(walked) - limit} more nodes")
    return out


def _depths(node: PlanNode, depth: int) -> Iterator[tuple[PlanNode, int]]:
    yield node, depth
    for child in node.children:
        yield from _depths(child, depth + 1)


def _node_line(node: PlanNode, dialect: Dialect) -> str:
    if dialect == "sqlite":
        return node.detail or node.label()
    text = node.label()
    figures = []
    if node.total_cost is not None:
        figures.append(f"cost={node.startup_cost or 0:.2f}..{node.total_cost:.2f}")
    if node.est_rows is not None:
        figures.append(f"rows={node.est_rows:,.0f}")
    if figures:
        text += f"  ({' '.join(figures)})"
    conds = [c for c in (node.index_cond, node.filter) if c]
    if conds:
        text += "  " + "; ".join(conds)
    return text
