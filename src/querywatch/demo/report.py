"""What a demo run is given (options), shows as it goes (progress) and reports at its end."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from querywatch.config import DEFAULT_SLO_MS
from querywatch.demo.canary import CanaryPlan, CanaryRun
from querywatch.demo.deployer import Deploy
from querywatch.demo.ground_truth import ReleaseQuery
from querywatch.demo.load import RequestRecord
from querywatch.demo.shop.releases import BAD
from querywatch.demo.shop.seed import Shape
from querywatch.demo.summary import Summary, percentile
from querywatch.gate import CheckReport
from querywatch.incidents.model import Incident, TimelineEvent
from querywatch.respond.alerts import Alert


@dataclass(frozen=True)
class DemoOptions:
    workdir: Path
    dsn: str | None = None
    scale: int | None = None
    duration: float = 100.0
    port: int | None = None
    rate: float = 30.0
    users: int = 300
    timeout: float = 3.0
    slo_ms: float = DEFAULT_SLO_MS
    #: What the replay deploys after v1 (``v1.1`` replays a harmless deploy), the load's seed and
    #: its burstiness: knobs for the detection benchmark's benign and noisy replays.
    release: str = BAD
    seed: int = 7
    burst_factor: float = 1.0
    #: Deploy the release as a canary (a share of users first, judged against the stable one,
    #: aborted or promoted); None deploys it to every user at once, as the report's team did.
    canary: CanaryPlan | None = None

    @property
    def shop_location(self) -> str:
        return self.dsn or str(self.workdir / "shop.sqlite3")

    @property
    def store_path(self) -> Path:
        return self.workdir / "querywatch.sqlite3"


@dataclass
class DemoProgress:
    """What the live view shows; updated by the run as it goes."""

    phase: str = "starting"
    release: str | None = None
    started_at: float = field(default_factory=time.time)
    records: list[RequestRecord] = field(default_factory=list)
    deploys: list[Deploy] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    steps: list[TimelineEvent] = field(default_factory=list)  # what the responder did
    canary: str | None = None  # the canary's weight, status and latest verdict, in a line


@dataclass
class DemoReport:
    options: DemoOptions
    shape: Shape
    run_started_at: float
    bad: Deploy | None
    rollback: Deploy | None
    summary: Summary
    ground_truth: list[ReleaseQuery]
    records: list[RequestRecord]
    completed: bool
    detected_at: float | None = None
    incident: Incident | None = None
    alerts: list[Alert] = field(default_factory=list)
    monitor_errors: list[str] = field(default_factory=list)  # checks that failed, kept going
    rollback_by: str | None = None  # "querywatch" (the responder) or "demo" (nothing fired)
    recovered: bool | None = None  # the responder's verdict; None when it gave none
    recovered_at: float | None = None
    postmortem_path: Path | None = None
    steps: list[TimelineEvent] = field(default_factory=list)
    gate: dict[str, CheckReport] = field(default_factory=dict)  # the CI gate, per release
    canary: CanaryRun | None = None  # None: the release went to every user at once
    promoted: Deploy | None = None  # the canary's promotion to every user

    @property
    def detect_after_s(self) -> float | None:
        """From the bad release taking traffic (a canary: its first share) to the first alert."""
        if self.detected_at is None or self.bad is None:
            return None
        return self.detected_at - self.bad.switched_at

    @property
    def rollback_completed_at(self) -> float | None:
        """When the rollback's deploy finished (the previous release serving, v2 stopped)."""
        return self.rollback.finished_at if self.rollback else None

    @property
    def mitigate_after_s(self) -> float | None:
        """From the bad release taking traffic to the rollback complete (process stopped)."""
        if self.rollback is None or self.bad is None:
            return None
        return self.rollback.finished_at - self.bad.switched_at

    def page_latency(self, page: str, phase: str) -> float | None:
        """Median latency of one page in one phase (before / during / after), in ms."""
        bounds = self._bounds()
        lo, hi = bounds[phase]
        values = [
            r.latency_ms
            for r in self.records
            if r.page == page and lo <= r.scheduled_at < hi and not r.failed
        ]
        return percentile(values, 50)

    def _bounds(self) -> dict[str, tuple[float, float]]:
        bad = self.bad.switched_at if self.bad else float("inf")
        back = self.rollback.switched_at if self.rollback else float("inf")
        return {"before": (0.0, bad), "during": (bad, back), "after": (back, float("inf"))}

    def as_json(self) -> dict[str, Any]:
        s = self.summary
        pages = sorted({r.page for r in self.records})
        return {
            "completed": self.completed,
            "bad_deploy_at": iso(self.bad.switched_at) if self.bad else None,
            "rollback_at": iso(self.rollback.switched_at) if self.rollback else None,
            "requests": s.before.requests + s.during.requests + s.after.requests,
            "error_rate": _rate(s),
            "latency_ms": {
                phase: {"p50": _r(stats.p50_ms), "p95": _r(stats.p95_ms)}
                for phase, stats in (("before", s.before), ("during", s.during), ("after", s.after))
            },
            "page_p50_ms": {
                page: {ph: _r(self.page_latency(page, ph)) for ph in ("before", "during", "after")}
                for page in pages
            },
            "slo_ms": s.slo_ms,
            "users_total": s.users_total,
            "users_affected": s.users_affected,
            "users_affected_pct": round(s.users_affected_pct, 2),
            "ground_truth": [q.as_dict() for q in self.ground_truth],
            "detected_at": iso(self.detected_at) if self.detected_at else None,
            "detect_after_s": _r(self.detect_after_s),
            "rollback_completed_at": iso(self.rollback_completed_at)
            if self.rollback_completed_at
            else None,
            "rollback_by": self.rollback_by,
            "mitigate_after_s": _r(self.mitigate_after_s),
            "recovered": self.recovered,
            "recovered_at": iso(self.recovered_at) if self.recovered_at else None,
            "postmortem_path": str(self.postmortem_path) if self.postmortem_path else None,
            "gate": {
                version: {
                    "exit_code": report.exit_code,
                    "passed": report.exit_code == 0,
                    "findings": [f.as_dict() for f in report.failing],
                }
                for version, report in self.gate.items()
            },
            "incident": self.incident.id if self.incident else None,
            "incident_status": self.incident.status if self.incident else None,
            "culprits": [
                {
                    "fingerprint": c.fingerprint,
                    "normalized": c.normalized,
                    "call_site": f"{c.call_sites[0].path}:{c.call_sites[0].line}"
                    if c.call_sites
                    else None,
                    "function": c.call_sites[0].function if c.call_sites else None,
                    "added_db_ms_per_s": round(c.added_db_ms_per_s, 1),
                    "first_seen_deploy": c.first_seen_deploy,
                }
                for c in (self.incident.culprits if self.incident else [])
            ],
            "scale": self.shape.orders,
            "database": "postgresql" if self.options.dsn else "sqlite",
            "canary": self.canary.as_json(self.records, iso) if self.canary else None,
        }


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _rate(s: Summary) -> float:
    total = s.before.requests + s.during.requests + s.after.requests
    errors = s.before.errors + s.during.errors + s.after.errors
    return round(errors / total, 4) if total else 0.0
