"""The records every source yields and every store keeps.

Sources differ in what they know (pg_stat_statements has no per-statement durations, in-app capture
has call sites), so the optional fields say what is known; nothing downstream needs to know which
source a record came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from querywatch.sketch import LatencySketch

WINDOW_SECONDS = 10


def window_start(ts: float, width: int = WINDOW_SECONDS) -> int:
    """The start (epoch seconds) of the bucket holding ``ts``."""
    return int(ts // width) * width


@dataclass(frozen=True, slots=True)
class CallSite:
    """Where in the application a statement was issued."""

    path: str
    line: int
    function: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line} in {self.function}"


@dataclass(slots=True)
class StatementWindow:
    """Aggregates for one fingerprint over one time bucket."""

    fingerprint: str
    normalized: str
    window_start: int
    calls: int
    total_ms: float
    max_ms: float
    dialect: str = "postgres"
    source: str = ""
    min_ms: float | None = None
    rows: int = 0
    errors: int = 0
    shared_blks_hit: int = 0
    shared_blks_read: int = 0
    sketch: LatencySketch | None = None
    call_sites: tuple[CallSite, ...] = ()
    #: The application release the statements came from ("" = unknown: pg_stat_statements, or
    #: capture that was not told). Windows of different releases never merge.
    release: str = ""

    @property
    def mean_ms(self) -> float:
        return self.total_ms / self.calls if self.calls else 0.0


@dataclass(slots=True)
class RequestWindow:
    """Aggregates for one route over one time bucket, from the WSGI/ASGI middleware."""

    route: str
    window_start: int
    requests: int
    errors: int
    total_ms: float
    max_ms: float
    db_ms: float
    db_calls: int = 0
    sketch: LatencySketch | None = None
    users: frozenset[str] = field(default_factory=frozenset)
    failed_users: frozenset[str] = field(default_factory=frozenset)
    release: str = ""  # the release that served these requests ("" = unknown)


@dataclass(slots=True)
class RepeatWindow:
    """Requests of one route that ran one fingerprint many times, over one time bucket (N+1).

    Only requests that ran the fingerprint at least the capture's ``repeat_threshold`` times
    count, so a window says "this many requests repeated it, this often in total, at most this
    often in one request" without keeping a per-request row.
    """

    route: str
    fingerprint: str
    window_start: int
    requests: int
    total_repeats: int
    max_repeats: int
    normalized: str = ""
    dialect: str = "postgres"
    release: str = ""  # the release that served these requests ("" = unknown)

    @property
    def mean_repeats(self) -> float:
        return self.total_repeats / self.requests if self.requests else 0.0


@dataclass(slots=True)
class FingerprintSummary:
    """One row of ``querywatch top``: a fingerprint's totals over a time range."""

    fingerprint: str
    normalized: str
    dialect: str
    calls: int
    total_ms: float
    max_ms: float
    rows: int
    errors: int
    first_seen: float
    last_seen: float
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    call_sites: tuple[CallSite, ...] = ()
    source: str = ""  # which source's figures these are (one per fingerprint, never a sum)
    #: The release these figures are of: the one read, or the only one seen ("" = several or
    #: unknown).
    release: str = ""

    @property
    def mean_ms(self) -> float:
        return self.total_ms / self.calls if self.calls else 0.0


@dataclass(frozen=True, slots=True)
class DeployMarker:
    """One deploy of the application, so a regression can be judged against what was deployed.

    A latency or error change means little on its own; lined up with the deploy that preceded it,
    it says which version (and commit) to look at. Times are epoch seconds; ``finished_at`` is
    ``None`` while the deploy is still rolling out.
    """

    id: str
    version: str
    commit: str | None
    environment: str
    started_at: float
    finished_at: float | None = None
    author: str | None = None
    previous_version: str | None = None
    rollback: bool = False
    #: A schema migration the deploy declared (free text: what it changes), and one seen as a
    #: change between schema snapshots taken at its start and finish that the previous version
    #: may not run against. Either makes an automatic rollback unsafe.
    migration: str | None = None
    schema_change: str | None = None

    @property
    def rollback_unsafe_reason(self) -> str | None:
        """Why rolling this deploy back could break the previous version, or ``None``."""
        if self.migration:
            return f"deploy {self.id} declared a schema migration: {self.migration}"
        if self.schema_change:
            return f"the schema changed during deploy {self.id}: {self.schema_change}"
        return None
