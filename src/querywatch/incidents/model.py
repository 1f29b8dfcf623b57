"""The incident: a detection that crossed the alert policy, and everything that happened to it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from querywatch.detect.model import Culprit, Detection, Triage

Status = Literal["open", "acknowledged", "mitigated", "resolved"]
EventKind = Literal[
    "detected", "alerted", "acknowledged", "note", "mitigated", "resolved", "action"
]


@dataclass(frozen=True, slots=True)
class Impact:
    """Who suffered, from middleware data over the incident's time range."""

    requests: int
    failed_requests: int  # an error or slower than the SLO
    users: int
    affected_users: int
    slo_ms: float

    @property
    def requests_pct(self) -> float:
        return 100.0 * self.failed_requests / self.requests if self.requests else 0.0

    @property
    def users_pct(self) -> float:
        return 100.0 * self.affected_users / self.users if self.users else 0.0


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
