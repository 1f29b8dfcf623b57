"""Gathering plan evidence when an incident opens or gains a culprit.

:func:`plan_evidence` EXPLAINs the culprit now (a generic plan: culprits carry placeholders), runs
the plan rules and index advice, and diffs the plan against the same fingerprint's plan kept
before the deploy (:mod:`querywatch.incidents.plan_snapshot`), or, for a query new with the
deploy, against the plan of the query it replaced. Never raises for a database or EXPLAIN problem:
each becomes a note in the evidence. The plan the log showed at the time (auto_explain, kept by
`digest --store` in state ``plans:logged:<fingerprint>``) rides along as ``logged``; without a
database to EXPLAIN, :func:`logged_plan_evidence` gives the culprits that plan alone.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from querywatch.config import DEFAULT_STATEMENT_TIMEOUT_MS
from querywatch.incidents.evidence import PlanEvidence, utc
from querywatch.incidents.explain_session import ExplainSession, explainable_sql
from querywatch.incidents.plan_snapshot import PlanSnapshot, load_snapshot
from querywatch.plans.model import Plan, node_from_postgres
from querywatch.store.state import logged_plan_key

if TYPE_CHECKING:
    from querywatch.incidents.model import Incident
    from querywatch.plans.rules import PlanPolicy
    from querywatch.store.base import Store


def plan_evidence(
    target: str,
    store: Store,
    incident: Incident,
    *,
    fingerprints: Sequence[str] | None = None,
    now: float | None = None,
    policy: PlanPolicy | None = None,
    statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS,
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
    with ExplainSession(target, statement_timeout_ms) as session:
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


def logged_plan_evidence(
    store: Store, incident: Incident, *, fingerprints: Sequence[str] | None = None
) -> dict[str, PlanEvidence]:
    """Plan evidence from the log alone (no database to EXPLAIN): the culprits (only
    ``fingerprints`` when given) whose plan a digest kept, by fingerprint."""
    wanted = None if fingerprints is None else set(fingerprints)
    out: dict[str, PlanEvidence] = {}
    for culprit in incident.culprits:
        fp = culprit.fingerprint
        if (wanted is not None and fp not in wanted) or (
            logged := load_logged_plan(store, fp)
        ) is None:
            continue
        ev = PlanEvidence(fingerprint=fp, sql=culprit.normalized, logged=logged)
        ev.notes.append("no database to EXPLAIN: the plan is the one the log showed at the time")
        out[fp] = ev
    return out


def load_logged_plan(store: Store, fp: str) -> dict[str, Any] | None:
    """The slowest plan a digest kept for ``fp`` (see :func:`logged_plan_evidence`), with the
    plan tree parsed when auto_explain logged JSON; None when none was kept (or unreadable)."""
    text = store.get_state(logged_plan_key(fp))
    if text is None:
        return None
    try:
        data = json.loads(text)
        out = {k: data.get(k) for k in ("at", "duration_ms", "format", "file", "line")}
        out["text"] = str(data["plan"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    out["plan"] = None
    if out["format"] == "json":
        try:
            raw = json.loads(out["text"])
            root = node_from_postgres(raw)
            plan = Plan(root, "postgres", str(data.get("normalized", "")))
            plan.analyzed = "Actual Total Time" in raw
            out["plan"] = plan.as_dict()
        except (ValueError, KeyError, TypeError, AttributeError):
            pass  # the text as logged is still evidence
    return out


def _culprit_evidence(
    session: ExplainSession,
    store: Store,
    incident: Incident,
    fp: str,
    sql: str,
    at: float,
    policy: PlanPolicy | None,
    snapshots: dict[str, PlanSnapshot | None],
) -> PlanEvidence:
    ev = PlanEvidence(fingerprint=fp, sql=sql, target=session.display)
    ev.logged = load_logged_plan(store, fp)
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
    session: ExplainSession, ev: PlanEvidence, plan: Plan, text: str, policy: PlanPolicy | None
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
    session: ExplainSession,
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
