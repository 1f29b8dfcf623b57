"""The incident: a detection that crossed the alert policy, and everything that happened to it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from querywatch.detect.model import Culprit, Detection, Triage

Status = Literal["open", "acknowledged", "mitigated", "resolved"]
STATUSES: tuple[Status, ...] = ("open", "acknowledged", "mitigated", "resolved")
EventKind = Literal[
    "detected", "alerted", "acknowledged", "note", "mitigated", "resolved", "action"
]
EVENT_KINDS: tuple[EventKind, ...] = (
    "detected",
    "alerted",
    "acknowledged",
    "note",
    "mitigated",
    "resolved",
    "action",
)
MISLEADING = "misleading"  # a note tag: this path of the investigation led nowhere


@dataclass(frozen=True, slots=True)
class Impact:
    """Who suffered, from middleware data over the incident's time range.

    ``failed_requests`` is an estimate (errors plus requests slower than the SLO, the latter read
    off the latency sketches); the user figures are exact unions of the middleware's user sets.
    ``since``/``until`` say which range was measured, so a reader can tell a partial figure.
    """

    requests: int
    failed_requests: int  # an error or slower than the SLO
    users: int
    affected_users: int
    slo_ms: float
    since: float | None = None
    until: float | None = None

    @property
    def requests_pct(self) -> float:
        return 100.0 * self.failed_requests / self.requests if self.requests else 0.0

    @property
    def users_pct(self) -> float:
        return 100.0 * self.affected_users / self.users if self.users else 0.0

    @property
    def measured(self) -> bool:
        """Whether the middleware saw any request over the range. Without request data nothing
        is known about users or requests: "0 of 0" is not "0% affected"."""
        return self.requests > 0

    @property
    def users_measured(self) -> bool:
        """Whether the requests carried user ids (the middleware counts users only then)."""
        return self.users > 0

    def describe(self) -> str:
        """The impact in one sentence (no final stop), saying what is unknown and why."""
        if not self.measured:
            return UNKNOWN_IMPACT
        requests = (
            f"{self.requests_pct:.1f}% of requests ({self.failed_requests:,} of "
            f"{self.requests:,}) failed or were slower than {self.slo_ms:g} ms"
        )
        if not self.users_measured:
            return f"users affected unknown ({NO_USER_IDS}); {requests}"
        users = (
            f"{self.users_pct:.1f}% of users affected ({self.affected_users:,} of {self.users:,})"
        )
        return f"{users}; {requests}"


UNKNOWN_IMPACT = (
    "unknown: no request data from the middleware for this period, so affected users and "
    "requests cannot be counted (the querywatch middleware measures them, docs/instrument.md)"
)
NO_USER_IDS = "the middleware's requests carried no user ids"


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    at: float
    kind: EventKind
    message: str
    author: str | None = None
    tags: tuple[str, ...] = ()  # e.g. ("misleading",) for a path that turned out wrong
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Incident:
    id: str
    status: Status
    opened_at: float
    detected_at: float
    title: str  # one line: what, where, since which deploy
    deploy_id: str | None
    detections: list[Detection]
    culprits: list[Culprit]
    triage: Triage | None
    impact: Impact | None
    timeline: list[TimelineEvent] = field(default_factory=list)
    resolved_at: float | None = None
    # Plan evidence per culprit fingerprint (``incidents.evidence.PlanEvidence.as_dict``): the
    # plan when the culprit was named, its findings, index advice and plan diff.
    plans: dict[str, Any] = field(default_factory=dict)

    @property
    def fingerprints(self) -> frozenset[str]:
        """Every fingerprint the incident is about: what a new detection is matched on."""
        found = {d.fingerprint for d in self.detections if d.fingerprint is not None}
        return frozenset(found | {c.fingerprint for c in self.culprits})

    @property
    def victims(self) -> list[Detection]:
        """Its victims, one per query: slowed only because the database got busier, never
        causes (:mod:`querywatch.detect.victims`)."""
        seen: dict[str, Detection] = {}
        for d in self.detections:
            if d.kind == "victim" and d.fingerprint and d.fingerprint not in seen:
                seen[d.fingerprint] = d
        return list(seen.values())

    @property
    def is_resolved(self) -> bool:
        return self.status == "resolved"

    def last_event(self, kind: EventKind) -> TimelineEvent | None:
        """The latest event of one kind (e.g. who acknowledged, and when)."""
        for event in reversed(self.timeline):
            if event.kind == kind:
                return event
        return None
