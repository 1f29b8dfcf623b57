"""Plans kept before a deploy: when the Monitor first sees a deploy marker, it EXPLAINs the
fingerprints that cost the most database time over the baseline before it and keeps those plans
in store state ``plans:before:<deploy id>``, so an incident's plan can later be diffed against them.

EXPLAIN plans against the database as it is, so "before" means "when querywatch first saw the
deploy": a migration that ran before that moment is already in those plans (the snapshot records
both times so a reader can judge). Best effort: what cannot be explained becomes a note.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from querywatch.config import DEFAULT_STATEMENT_TIMEOUT_MS
from querywatch.incidents.explain_session import ExplainSession, display_target, explainable_sql
from querywatch.plans.model import Plan
from querywatch.store.base import DEPLOY_STATE_PREFIXES

if TYPE_CHECKING:
    from querywatch.detect.policy import Policy
    from querywatch.records import DeployMarker
    from querywatch.store.base import Store

TOP_FINGERPRINTS = 20
"""Fingerprints whose plans are kept before a deploy: the top ones by database time."""


def last_deploy_key(environment: str | None = None) -> str:
    """State key of the last deploy whose plans were taken (one per environment)."""
    return "plans:last_deploy" if environment is None else f"plans:last_deploy:{environment}"


def before_key(deploy_id: str) -> str:
    """State key of the plans kept before ``deploy_id``."""
    return f"{DEPLOY_STATE_PREFIXES[1]}{deploy_id}"


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
    statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS,
) -> dict[str, dict[str, Any]]:
    """EXPLAIN each ``(fingerprint, normalized SQL)`` on ``target`` now and keep the plans as the
    ones before ``deploy`` (state ``plans:before:<deploy id>``). Returns {fingerprint: plan dict};
    statements that could not be explained are left out and named in the snapshot's notes."""
    taken_at = time.time() if now is None else now
    snap = PlanSnapshot(deploy.id, deploy.started_at, taken_at, display_target(target))
    with ExplainSession(target, statement_timeout_ms) as session:
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
    statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS,
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
