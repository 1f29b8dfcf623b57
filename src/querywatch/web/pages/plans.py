"""A fingerprint's plans as the store keeps them, for its page: the latest plan, its findings and
index advice, and how it changed across the last deploy.

Plans reach the store two ways: an incident keeps, per culprit, the plan explained when it was
named with its findings, index advice and diff (``Incident.plans``, :mod:`incidents.evidence`),
and the agent keeps the plans of the costliest queries when it first sees a deploy
(``plans:before:<deploy>``, :mod:`incidents.plan_snapshot`). Nothing here runs EXPLAIN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from querywatch.incidents.evidence import PlanEvidence
from querywatch.incidents.model import Incident
from querywatch.incidents.plan_snapshot import PlanSnapshot, load_snapshot
from querywatch.plans.diff import diff_plans
from querywatch.plans.model import Plan
from querywatch.records import DeployMarker
from querywatch.store.base import Store

SNAPSHOTS_READ = 5  # deploys whose kept plans are looked at, newest first


@dataclass(slots=True)
class PlanView:
    """What the fingerprint page shows about plans; every part may be missing."""

    plan: Plan | None = None
    plan_source: str = ""  # where the plan shown comes from, in words
    plan_at: float | None = None
    evidence: PlanEvidence | None = None  # the latest incident's: findings and index advice
    evidence_incident: str | None = None
    deploy: DeployMarker | None = None  # the last deploy, the diff is across it
    diff: list[str] = field(default_factory=list)
    before: Plan | None = None
    diff_note: str | None = None  # why there is no diff

    @property
    def findings(self) -> list[dict[str, Any]]:
        return self.evidence.findings if self.evidence is not None else []


def plan_view(
    store: Store,
    fingerprint: str,
    incidents: Sequence[Incident],
    deploys: Sequence[DeployMarker],
) -> PlanView:
    """The plans of ``fingerprint`` from ``incidents`` (newest first) and the plans kept before
    the latest of ``deploys`` (in start order)."""
    view = PlanView()
    for incident in incidents:
        data = incident.plans.get(fingerprint)
        if data:
            view.evidence = PlanEvidence.from_dict(data)
            view.evidence_incident = incident.id
            break
    snapshots = _snapshots(store, deploys, fingerprint)
    candidates: list[tuple[float, Plan, str]] = []
    ev = view.evidence
    if ev is not None and ev.plan:
        at = ev.explained_at or 0.0
        candidates.append(
            (at, Plan.from_dict(ev.plan), f"{ev.source}, for incident {view.evidence_incident}")
        )
    for deploy, snap in snapshots:
        candidates.append(
            (
                snap.taken_at,
                _plan(snap, fingerprint),
                f"kept when deploy {deploy.id} was first seen (EXPLAIN on {snap.target})",
            )
        )
    if candidates:
        at, plan, source = max(candidates, key=lambda c: c[0])
        view.plan, view.plan_at, view.plan_source = plan, at, source
    view.deploy = deploys[-1] if deploys else None
    _diff(view, snapshots, fingerprint)
    return view


def _snapshots(
    store: Store, deploys: Sequence[DeployMarker], fingerprint: str
) -> list[tuple[DeployMarker, PlanSnapshot]]:
    found = []
    for deploy in list(deploys)[-SNAPSHOTS_READ:]:
        snap = load_snapshot(store, deploy.id)
        if snap is not None and fingerprint in snap.plans:
            found.append((deploy, snap))
    return found


def _plan(snap: PlanSnapshot, fingerprint: str) -> Plan:
    plan = snap.plan(fingerprint)
    assert plan is not None  # _snapshots kept only snapshots that have it
    return plan


def _diff(
    view: PlanView, snapshots: list[tuple[DeployMarker, PlanSnapshot]], fingerprint: str
) -> None:
    """The plan before the last deploy against the latest plan taken after it."""
    deploy = view.deploy
    if deploy is None:
        view.diff_note = "no deploy recorded: nothing to compare the plan across"
        return
    ev = view.evidence
    against = (ev.against or {}) if ev is not None else {}
    if ev is not None and ev.diff and against.get("deploy_id") == deploy.id:
        view.diff = ev.diff_summary
        before = against.get("plan")
        view.before = Plan.from_dict(before) if before else None
        return
    before_snap = next((s for d, s in snapshots if d.id == deploy.id), None)
    if before_snap is None:
        view.diff_note = (
            f"no plan of this query was kept before deploy {deploy.id} (the agent keeps the "
            "plans of the costliest queries when it first sees a deploy)"
        )
        return
    view.before = _plan(before_snap, fingerprint)
    if view.plan is None or view.plan_at is None or view.plan_at <= before_snap.taken_at:
        view.diff_note = (
            f"no plan of this query was taken after deploy {deploy.id} to compare with: the "
            "plan shown is the one from before it"
        )
        return
    view.diff = diff_plans(view.before, view.plan).summary()
