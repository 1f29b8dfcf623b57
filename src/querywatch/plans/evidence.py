"""Plan evidence for incidents: the culprit's plan now, its findings, its index advice, and how
its plan differs from the one before the deploy.

Two moments matter. When the Monitor first sees a deploy marker, it EXPLAINs the fingerprints
that cost the most database time over the baseline before that deploy and keeps those plans in
store state ``plans:before:<deploy id>`` (:func:`snapshot_new_deploy`). EXPLAIN plans against the
database as it is, so "before" means "when querywatch first saw the deploy": a migration that ran
before that moment is already in those plans (the snapshot records both times so a reader can
judge). When an incident opens or gains a culprit, :func:`plan_evidence` EXPLAINs the culprit now
(a generic plan: culprits carry placeholders), runs the plan rules and index advice, and diffs the
plan against the same fingerprint's plan before the deploy, or, for a query new with the deploy,
against the plan of the query it replaced.

Everything here is best effort: a database that cannot be reached or a statement EXPLAIN rejects
becomes a note in the evidence, never an error for the Monitor. The safety rules of
``querywatch.plans.explain`` hold: read-only sessions, a short statement timeout, plain EXPLAIN
(never ANALYZE), HypoPG's hypothetical indexes only in session memory.

This module imports the EXPLAIN machinery (psycopg, sqlglot) only when it plans something, so the
incident views can read evidence without loading it.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from querywatch.plans.model import Dialect, Plan, PlanNode
from querywatch.store.base import DEPLOY_STATE_PREFIXES

if TYPE_CHECKING:
    from querywatch.detect.policy import Policy
    from querywatch.incidents.model import Incident
    from querywatch.plans.explain import Explainer
    from querywatch.plans.rules import PlanPolicy
    from querywatch.records import DeployMarker
    from querywatch.store.base import Store

TOP_FINGERPRINTS = 20
"""Fingerprints whose plans are kept before a deploy: the top ones by database time."""

EXPLAINABLE = frozenset({"SELECT", "WITH", "VALUES", "TABLE", "INSERT", "UPDATE", "DELETE"})
"""First words of statements worth a plan (BEGIN, SET, SHOW… have none)."""

OUTLINE_NODES = 12
"""Plan nodes shown in an outline; deeper plans end with "… N more nodes"."""


def last_deploy_key(environment: str | None = None) -> str:
    """State key of the last deploy whose plans were taken (one per environment)."""
    return "plans:last_deploy" if environment is None else f"plans:last_deploy:{environment}"


def before_key(deploy_id: str) -> str:
    """State key of the plans kept before ``deploy_id``."""
    return f"{DEPLOY_STATE_PREFIXES[1]}{deploy_id}"


def utc(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


# --- the snapshot before a deploy ----------------------------------------------------------------


@dataclass(slots=True)
class PlanSnapshot:
    """Plans taken when a deploy was first seen, stored as JSON in ``plans:before:<id>``."""

    deploy_id: str
    deploy_started_at: float
    taken_at: float
    target: str  # redacted DSN or SQLite path
    plans: dict[str, dict[str, Any]] = field(default_factory=dict)  # fp -> Plan.as_dict()
    notes: list[str] = field(default_factory=list)  # what could not be explained, and why

    def plan(self, fp: str) -> Plan | None:
        data = self.plans.get(fp)
        return None if data is None else Plan.from_dict(data)

    def as_dict(self) -> dict[str, Any]:
        return {
            "deploy_id": self.deploy_id,
            "deploy_started_at": self.deploy_started_at,
            "taken_at": self.taken_at,
            "target": self.target,
            "plans": self.plans,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlanSnapshot:
        return cls(
            deploy_id=str(data["deploy_id"]),
            deploy_started_at=float(data["deploy_started_at"]),
            taken_at=float(data["taken_at"]),
            target=str(data.get("target", "")),
            plans=dict(data.get("plans") or {}),
            notes=[str(n) for n in data.get("notes", ())],
        )


def load_snapshot(store: Store, deploy_id: str) -> PlanSnapshot | None:
    """The plans kept before ``deploy_id``, or None (never taken, or unreadable)."""
    text = store.get_state(before_key(deploy_id))
    if text is None:
        return None
    try:
        return PlanSnapshot.from_dict(json.loads(text))
    except (ValueError, KeyError, TypeError):
        return None


def snapshot_plans(
    target: str,
    store: Store,
    fingerprints_with_sql: Sequence[tuple[str, str]],
    *,
    deploy: DeployMarker,
    now: float | None = None,
    statement_timeout_ms: int = 5000,
) -> dict[str, dict[str, Any]]:
    """EXPLAIN each ``(fingerprint, normalized SQL)`` on ``target`` now and keep the plans as the
    ones before ``deploy`` (state ``plans:before:<deploy id>``). Returns {fingerprint: plan dict};
    statements that could not be explained are left out and named in the snapshot's notes."""
    taken_at = time.time() if now is None else now
    snap = PlanSnapshot(deploy.id, deploy.started_at, taken_at, _display(target))
    with _Session(target, statement_timeout_ms) as session:
        snap.target = session.display
        for fp, sql in fingerprints_with_sql:
            text = explainable_sql(sql, session.dialect)
            if text is None:
                continue
            plan, error = session.explain(text)
            if plan is not None:
                snap.plans[fp] = plan.as_dict()
            else:
                snap.notes.append(f"{fp}: {error}")
                if session.broken:
                    break  # the database is gone: one note says so
    store.set_state(before_key(deploy.id), json.dumps(snap.as_dict(), sort_keys=True))
    return snap.plans


def snapshot_new_deploy(
    target: str,
    store: Store,
    deploy: DeployMarker | None,
    policy: Policy,
    now: float,
    *,
    environment: str | None = None,
    top: int = TOP_FINGERPRINTS,
    statement_timeout_ms: int = 5000,
) -> PlanSnapshot | None:
    """The Monitor's rule: on a deploy marker not seen before, keep the plans of the top ``top``
    fingerprints by database time over the baseline before it. Returns the snapshot taken, or
    None when there was nothing new (or the deploy is too old for its plans to mean "before")."""
    if deploy is None:
        return None
    key = last_deploy_key(environment)
    if store.get_state(key) == deploy.id:
        return None
    if now - deploy.started_at <= policy.deploy_horizon_seconds:
        ranked = store.top(
            since=deploy.started_at - policy.baseline_seconds,
            until=deploy.started_at,
            sort="total",
            limit=top,
        )
        snapshot_plans(
            target,
            store,
            [(s.fingerprint, s.normalized) for s in ranked],
            deploy=deploy,
            now=now,
            statement_timeout_ms=statement_timeout_ms,
        )
    # Marked seen even when EXPLAIN failed: the notes say why, and a poll is not the time to retry.
    store.set_state(key, deploy.id)
    return load_snapshot(store, deploy.id)


# --- the evidence for one culprit ----------------------------------------------------------------


@dataclass(slots=True)
class PlanEvidence:
    """What the plans say about one culprit, as stored on the incident (``Incident.plans``).

    ``plan`` is the plan now (``Plan.as_dict()``), ``findings`` the plan rules' findings
    (``Finding.as_dict()``), ``advice`` the index advice (``Advice.as_dict()``), ``diff`` the
    plan diff (``PlanDiff.as_dict()``) against ``against``: which plan it was compared with
    (``fingerprint``, ``sql``, ``why``: "same query" or "replaced query", ``explained_at``,
    ``when``: "before deploy" or "now", ``deploy_id``, ``plan``). ``notes`` say what could not be
    done and why.
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


def plan_evidence(
    target: str,
    store: Store,
    incident: Incident,
    *,
    fingerprints: Sequence[str] | None = None,
    now: float | None = None,
    policy: PlanPolicy | None = None,
    statement_timeout_ms: int = 5000,
) -> dict[str, PlanEvidence]:
    """Plan evidence for the incident's culprits (only ``fingerprints`` when given), by
    fingerprint. Never raises for a database or EXPLAIN problem: each becomes a note."""
    at = time.time() if now is None else now
    wanted = None if fingerprints is None else set(fingerprints)
    culprits = [c for c in incident.culprits if wanted is None or c.fingerprint in wanted]
    out: dict[str, PlanEvidence] = {}
    if not culprits:
        return out
    snapshots: dict[str, PlanSnapshot | None] = {}
    with _Session(target, statement_timeout_ms) as session:
        for culprit in culprits:
            out[culprit.fingerprint] = _culprit_evidence(
                session,
                store,
                incident,
                culprit.fingerprint,
                culprit.normalized,
                at,
                policy,
                snapshots,
            )
    return out


def _culprit_evidence(
    session: _Session,
    store: Store,
    incident: Incident,
    fp: str,
    sql: str,
    at: float,
    policy: PlanPolicy | None,
    snapshots: dict[str, PlanSnapshot | None],
) -> PlanEvidence:
    ev = PlanEvidence(fingerprint=fp, sql=sql, target=session.display)
    text = explainable_sql(sql, session.dialect)
    if text is None:
        ev.notes.append("not a statement EXPLAIN plans (only SELECT, WITH, INSERT, UPDATE, DELETE)")
        return ev
    plan, error = session.explain(text)
    if plan is None:
        ev.notes.append(f"EXPLAIN failed: {error}")
        return ev
    ev.dialect = plan.dialect
    ev.explained_at = at
    ev.plan = plan.as_dict()
    _findings_and_advice(session, ev, plan, text, policy)
    _diff(session, store, incident, ev, plan, at, snapshots)
    return ev


def _findings_and_advice(
    session: _Session, ev: PlanEvidence, plan: Plan, text: str, policy: PlanPolicy | None
) -> None:
    from querywatch.errors import QuerywatchError
    from querywatch.plans.advice import advise
    from querywatch.plans.rules import check_plan

    explainer = session.explainer
    assert explainer is not None
    try:
        ev.findings = [f.as_dict() for f in check_plan(plan, explainer.catalog(plan), policy)]
    except QuerywatchError as exc:
        ev.notes.append(f"plan rules: {exc}")
    except Exception as exc:  # best effort: a rule's bug must not cost the incident its plan
        ev.notes.append(f"plan rules failed: {type(exc).__name__}: {exc}")
    try:
        ev.advice = advise(explainer, text, plan=plan, policy=policy).as_dict()
    except QuerywatchError as exc:
        ev.notes.append(f"index advice: {exc}")
    except Exception as exc:
        ev.notes.append(f"index advice failed: {type(exc).__name__}: {exc}")


def _diff(
    session: _Session,
    store: Store,
    incident: Incident,
    ev: PlanEvidence,
    plan: Plan,
    at: float,
    snapshots: dict[str, PlanSnapshot | None],
) -> None:
    from querywatch.plans.diff import diff_plans

    detections = [d for d in incident.detections if d.fingerprint == ev.fingerprint]
    deploy_id = next((d.deploy_id for d in detections if d.deploy_id), incident.deploy_id)
    replaced = next(
        (
            (str(d.evidence["replaced_fingerprint"]), str(d.evidence.get("replaced_normalized")))
            for d in detections
            if d.kind == "new_fingerprint" and d.evidence.get("replaced_fingerprint")
        ),
        None,
    )
    is_new = any(d.kind == "new_fingerprint" for d in detections)
    snap = None
    if deploy_id is not None:
        if deploy_id not in snapshots:
            snapshots[deploy_id] = load_snapshot(store, deploy_id)
        snap = snapshots[deploy_id]
    before: Plan | None = None
    against: dict[str, Any] = {}
    if snap is not None and not is_new and (before := snap.plan(ev.fingerprint)) is not None:
        against = {"fingerprint": ev.fingerprint, "sql": ev.sql, "why": "same query"}
    elif replaced is not None:
        rfp, rsql = replaced
        against = {"fingerprint": rfp, "sql": rsql, "why": "replaced query"}
        if snap is not None:
            before = snap.plan(rfp)
        if before is None:
            text = explainable_sql(rsql, session.dialect)
            found, error = session.explain(text) if text else (None, "not explainable")
            if found is None:
                ev.notes.append(f"plan diff: the query it replaced could not be explained: {error}")
                return
            before = found
            against.update(when="now", explained_at=at)
    if before is None:
        ev.notes.append(_why_no_diff(deploy_id, snap, is_new))
        return
    if "when" not in against and snap is not None:
        against.update(
            when="before deploy",
            deploy_id=snap.deploy_id,
            explained_at=snap.taken_at,
            lag_s=max(snap.taken_at - snap.deploy_started_at, 0.0),
        )
    against["plan"] = before.as_dict()
    ev.against = against
    ev.diff = diff_plans(before, plan).as_dict()


def _why_no_diff(deploy_id: str | None, snap: PlanSnapshot | None, is_new: bool) -> str:
    if deploy_id is None:
        return "plan diff: no deploy is blamed, so there is no plan from before to compare with"
    if is_new:
        return (
            f"plan diff: the query is new with deploy {deploy_id} and replaced no query, "
            "so there is no earlier plan to compare with"
        )
    if snap is None:
        return (
            f"plan diff: no plans were kept before deploy {deploy_id} "
            "(the Monitor was not running with an explain target when it was first seen)"
        )
    why = f"; {snap.notes[0]}" if snap.notes else ""
    return (
        f"plan diff: the query was not among the fingerprints explained when deploy "
        f"{deploy_id} was first seen ({utc(snap.taken_at)}){why}"
    )


# --- EXPLAIN, best effort ------------------------------------------------------------------------


def explainable_sql(sql: str, dialect: str) -> str | None:
    """A normalized statement (``?`` placeholders) in a form EXPLAIN takes, or None when it is
    not a statement with a plan. PostgreSQL gets ``$1``, ``$2``… (a generic plan)."""
    text = sql.strip()
    first = text.split(None, 1)[0].upper().lstrip("(") if text else ""
    if first not in EXPLAINABLE:
        return None
    return text if dialect == "sqlite" else numbered_placeholders(text)


def numbered_placeholders(sql: str) -> str:
    """``?`` outside quotes and comments become ``$n``, numbered after any ``$n`` already there."""
    import re

    highest = max((int(m) for m in re.findall(r"\$(\d+)", sql)), default=0)
    out: list[str] = []
    i, n, count = 0, len(sql), highest
    while i < n:
        ch = sql[i]
        if ch in "'\"":
            j = i + 1
            while j < n:
                if sql[j] == ch:
                    if j + 1 < n and sql[j + 1] == ch:  # a doubled quote stays inside
                        j += 2
                        continue
                    break
                j += 1
            out.append(sql[i : j + 1])
            i = j + 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            out.append(sql[i:j])
            i = j
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(sql[i:j])
            i = j
        elif ch == "?":
            count += 1
            out.append(f"${count}")
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _display(target: str) -> str:
    from querywatch.plans.explain import sqlite_path

    if sqlite_path(target) is not None:
        return target
    from querywatch.pg import display_dsn

    return display_dsn(target)


class _Session:
    """One Explainer opened on first use; a target that cannot be opened, or a session that
    broke, is remembered so the next statement gets the same note instead of a new timeout."""

    def __init__(self, target: str, statement_timeout_ms: int) -> None:
        from querywatch.plans.explain import sqlite_path

        self.target = target
        self.statement_timeout_ms = statement_timeout_ms
        self.dialect: Dialect = "postgres" if sqlite_path(target) is None else "sqlite"
        self.display = _display(target)
        self.explainer: Explainer | None = None
        self.broken: str | None = None

    def __enter__(self) -> _Session:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.explainer is not None:
            with contextlib.suppress(Exception):  # closing a dead session cannot matter
                self.explainer.close()

    def explain(self, sql: str) -> tuple[Plan | None, str | None]:
        """(plan, None), or (None, why not)."""
        from querywatch.errors import DatabaseUnavailable, QuerywatchError
        from querywatch.plans.explain import Explainer

        if self.broken is not None:
            return None, self.broken
        if self.explainer is None:
            try:
                self.explainer = Explainer(
                    self.target,
                    statement_timeout_ms=self.statement_timeout_ms,
                    application_name="querywatch monitor",
                )
            except QuerywatchError as exc:
                self.broken = str(exc)
                return None, self.broken
            except Exception as exc:  # e.g. a SQLite file that is not a database
                self.broken = f"cannot open {self.display}: {exc}"
                return None, self.broken
        try:
            return self.explainer.explain(sql), None
        except DatabaseUnavailable as exc:
            self.broken = str(exc)
            return None, self.broken
        except QuerywatchError as exc:
            return None, str(exc)
        except Exception as exc:  # best effort: the Monitor goes on without this plan
            return None, f"{type(exc).__name__}: {exc}"


__all__ = [
    "TOP_FINGERPRINTS",
    "PlanEvidence",
    "PlanSnapshot",
    "before_key",
    "explainable_sql",
    "last_deploy_key",
    "load_snapshot",
    "plan_evidence",
    "plan_outline",
    "snapshot_new_deploy",
    "snapshot_plans",
]
