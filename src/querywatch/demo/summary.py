"""The incident's impact, computed from load records and deploy times.

Phases are by the time a request was due (``scheduled_at``):

* **before**: due before the bad release finished deploying (``bad_at``);
* **during**: due from ``bad_at`` until the rollback finished (``rollback_at``; open-ended if none);
* **after**: due from ``rollback_at`` on.

A request *failed* when it timed out, could not connect or start, or got a 5xx. Percentiles are
nearest-rank over every request of the phase, failed ones included (their latency is the time
until they failed). A user is *affected* when any of their requests in the *during* phase that
met the bad release failed or took longer than the SLO; ``users_affected_pct`` is relative to
every user seen in the run. A request met the bad release when the router sent it there; with a
canary, the stable cohort's requests in the *during* phase did not (a record that does not say
where it was sent counts, as every request did when the bad release took all traffic).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from querywatch.demo.load import RequestRecord

DEFAULT_SLO_MS = 1000.0


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (the smallest value with at least p% of values at or below it)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class PhaseStats:
    """Traffic figures for one phase."""

    requests: int
    errors: int
    error_rate: float
    p50_ms: float | None
    p95_ms: float | None

    @classmethod
    def of(cls, records: Sequence[RequestRecord]) -> PhaseStats:
        errors = sum(1 for r in records if r.failed)
        latencies = [r.latency_ms for r in records]
        return cls(
            len(records),
            errors,
            errors / len(records) if records else 0.0,
            percentile(latencies, 50),
            percentile(latencies, 95),
        )


@dataclass(frozen=True)
class Summary:
    """Before / during / after figures and how many users the bad release hurt."""

    before: PhaseStats
    during: PhaseStats
    after: PhaseStats
    users_total: int
    users_affected: int
    users_affected_pct: float
    slo_ms: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(
    records: Iterable[RequestRecord],
    bad_at: float,
    rollback_at: float | None,
    slo_ms: float = DEFAULT_SLO_MS,
    bad_release: str | None = None,
) -> Summary:
    """Split ``records`` by the bad deploy and the rollback and compute the impact.

    ``bad_release``: only requests sent to it (or sent who knows where) affect users; None: all.
    """
    end = math.inf if rollback_at is None else rollback_at
    before: list[RequestRecord] = []
    during: list[RequestRecord] = []
    after: list[RequestRecord] = []
    users: set[int] = set()
    affected: set[int] = set()
    for record in records:
        users.add(record.user_id)
        if record.scheduled_at < bad_at:
            before.append(record)
        elif record.scheduled_at < end:
            during.append(record)
            met = bad_release is None or record.routed_to in (None, bad_release)
            if met and (record.failed or record.latency_ms > slo_ms):
                affected.add(record.user_id)
        else:
            after.append(record)
    pct = 100.0 * len(affected) / len(users) if users else 0.0
    return Summary(
        PhaseStats.of(before),
        PhaseStats.of(during),
        PhaseStats.of(after),
        len(users),
        len(affected),
        pct,
        slo_ms,
    )
