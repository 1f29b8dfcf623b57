"""What detection produces. Shared by the detectors, triage, attribution, incidents and alerts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from querywatch.records import CallSite

DetectionKind = Literal[
    "deploy_regression",  # a fingerprint slower / costlier after a deploy than before it
    "new_fingerprint",  # born with a deploy and costing a large share of database time
    "unannounced_regression",  # a sudden rise with no deploy marker
    "n_plus_one",  # one request issuing the same fingerprint many times
    "load",  # everything slowed together: load or the host, not a query
    "victim",  # slower only because the database got busier: never a cause
]


@dataclass(frozen=True, slots=True)
class PhaseStats:
    """One fingerprint (or route) over one period: the figures a person compares."""

    calls: int
    calls_per_s: float
    mean_ms: float
    p95_ms: float | None
    db_ms_per_s: float  # database time this fingerprint costs per wall-clock second


@dataclass(frozen=True, slots=True)
class Detection:
    """One finding of one detector, with the evidence a person needs to trust it."""

    kind: DetectionKind
    detected_at: float
    confidence: float  # 0..1
    summary: str  # one sentence
    fingerprint: str | None = None
    normalized: str | None = None
    route: str | None = None
    deploy_id: str | None = None
    before: PhaseStats | None = None
    after: PhaseStats | None = None
    added_db_ms_per_s: float = 0.0
    p_value: float | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Culprit:
    """A fingerprint blamed for a regression, ranked by the database time it added."""

    fingerprint: str
    normalized: str
    added_db_ms_per_s: float
    first_seen_deploy: str | None
    call_sites: tuple[CallSite, ...] = ()
    commits: tuple[str, ...] = ()  # the commit that last changed each call site's line (git)
    detection_kinds: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Triage:
    """Is it the database? Figures from the middleware and from the server itself."""

    db_share_before: float | None  # share of request time spent in the database, 0..1
    db_share_after: float | None
    verdict: str  # one sentence: whether the database is the bottleneck, with the figures
    database_is_bottleneck: bool | None
    health: dict[str, Any] = field(default_factory=dict)  # connections by state, locks, cache…
