"""The thresholds detection judges by, with defaults tuned to "catch the report's outage within
seconds, stay quiet across benign deploys and ordinary noise".

Every gate a detection passes is one of these fields, so a reader of a Detection's evidence can
see which margin it cleared; the settings layer exposes them one to one.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True)
class Policy:
    """Thresholds of the regression detectors (times in seconds, latencies in milliseconds)."""

    baseline_seconds: float = 1800.0
    """How far back "before" reaches: 30 min covers ordinary minute-to-minute variation."""

    min_duration_s: float = 10.0
    """Seconds of traffic after a deploy before it is judged: one full 10 s window."""

    after_max_seconds: float = 900.0
    """A deploy's "after" phase is at most this long: later changes are not the deploy's."""

    deploy_horizon_seconds: float = 3600.0
    """A deploy older than this is no longer compared against; changes go unannounced."""

    min_calls_before: int = 20
    """Calls a fingerprint needs before a deploy to have a baseline worth comparing with."""

    min_calls_after: int = 20
    """Calls a fingerprint needs after a deploy (or in the recent windows) to be judged."""

    min_chunk_calls: int = 5
    """Calls that make one window evidence; quieter windows are pooled with the next ones."""

    min_after_windows: int = 2
    """Windows after the deploy (or recent windows) the change must show in: persistence."""

    min_baseline_chunks: int = 6
    """Evidence chunks a trailing baseline needs before unannounced changes are judged."""

    min_latency_ratio: float = 2.0
    """After/before mean latency, relative to the control (the other queries), to blame a query."""

    min_superiority: float = 0.8
    """Probability that an after-call is slower than a before-call (0.5 = no change)."""

    max_p_value: float = 0.01
    """One-sided Mann–Whitney p-value a change must reach."""

    min_added_db_ms_per_s: float = 10.0
    """Database time a change must add per wall-clock second (1% of one busy connection)."""

    new_fingerprint_share: float = 0.2
    """Share of the database time after a deploy a new fingerprint must take."""

    new_fingerprint_db_ms_per_s: float = 500.0
    """…or this much database time per second, whatever its share."""

    new_fingerprint_min_calls: int = 10
    """Calls a new fingerprint needs after the deploy: one expensive call is not a pattern."""

    recent_windows: int = 3
    """Windows compared against the trailing baseline by the unannounced detector."""

    mad_k: float = 5.0
    """How many robust standard deviations above the baseline median an unannounced rise needs."""

    mad_floor: float = 0.1
    """The robust spread is taken as at least this fraction of the median (steady queries)."""

    control_min_fingerprints: int = 3
    """Other fingerprints needed to form a control; with fewer, the control is 1 (no control)."""

    load_min_ratio: float = 1.5
    """A fingerprint slower by at least this factor (and significantly) counts as slowed by load."""

    load_share: float = 0.6
    """Call-weighted share of the judged fingerprints that must slow together to call it load."""

    load_min_fingerprints: int = 3
    """Fingerprints that must slow together to call it load (two slow queries may be two bugs)."""

    load_similarity: float = 2.0
    """Slowed "by a similar factor": within this factor of the common (median) slowdown."""

    victim_max_change: float = 1.5
    """A slower query whose rows or buffers per call moved by this factor either way, or whose
    call rate rose by it, changed its own behaviour: it may be a cause, never a victim."""

    victim_load_share: float = 0.5
    """A slower query with its own behaviour unchanged is a victim when other queries' new load
    (new queries, or queries whose own behaviour changed) added at least this share of the
    database time its slowdown added (and at least ``min_added_db_ms_per_s``)…"""

    victim_min_busy_ms_per_s: float = 1000.0
    """…and the database worked at least this much per second after (1000: one backend busy on
    average), so statements overlapped: below it work is mostly serial, and one query's load
    cannot slow another much."""

    open_incident_confidence: float = 0.8
    """Confidence at which a detection opens an incident (lower ones are only reported)."""

    rollback_confidence: float = 0.85
    """Confidence a detection blaming the latest deploy needs before an automatic rollback:
    higher than opening an incident (0.8), because a wrong rollback is a deploy of its own.
    A new costly query that just cleared every threshold scores 0.8 with two windows of
    evidence and about 0.86 with three, so the rollback waits for one more window than the
    alert; the evidence is then re-checked on fresh data before anything runs."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value < 0:
                raise ValueError(f"detection policy: {f.name} must not be negative, got {value}")
        for name in ("min_superiority", "max_p_value", "new_fingerprint_share", "load_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"detection policy: {name} must be within 0..1, got {value}")
        if not 0.0 <= self.rollback_confidence <= 1.0:
            raise ValueError(
                "detection policy: rollback_confidence must be within 0..1, "
                f"got {self.rollback_confidence}"
            )
        if not 0.0 <= self.open_incident_confidence <= 1.0:
            raise ValueError(
                "detection policy: open_incident_confidence must be within 0..1, "
                f"got {self.open_incident_confidence}"
            )
        for name in ("min_latency_ratio", "load_min_ratio", "load_similarity", "victim_max_change"):
            value = getattr(self, name)
            if value <= 1.0:
                raise ValueError(f"detection policy: {name} must be above 1, got {value}")
        if self.min_superiority >= 1.0:
            raise ValueError("detection policy: min_superiority must be below 1")
        if self.max_p_value <= 0.0:
            raise ValueError("detection policy: max_p_value must be above 0")
        for name in ("min_after_windows", "recent_windows", "min_chunk_calls"):
            if getattr(self, name) < 1:
                raise ValueError(f"detection policy: {name} must be at least 1")
