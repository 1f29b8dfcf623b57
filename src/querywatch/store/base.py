"""The one storage interface. SQLite (embedded default) and PostgreSQL (shared) implement it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from querywatch.records import FingerprintSummary, RequestWindow, StatementWindow

SortKey = Literal["total", "mean", "calls", "p95"]


@dataclass(frozen=True, slots=True)
class Retention:
    """How long each resolution is kept: 10 s buckets for a day, 1 min buckets for two weeks."""

    raw_seconds: int = 24 * 3600
    minute_seconds: int = 14 * 24 * 3600


class Store(Protocol):
    """Everything querywatch keeps. Writes are batched and transactional: a batch lands whole."""

    def write_windows(self, windows: Sequence[StatementWindow]) -> None:
        """Merge statement windows in (same fingerprint and bucket: counts add, sketches merge)."""

    def write_requests(self, windows: Sequence[RequestWindow]) -> None:
        """Merge request windows in (same route and bucket: counts add, user sets union)."""

    def top(
        self,
        since: float | None = None,
        until: float | None = None,
        sort: SortKey = "total",
        limit: int = 20,
    ) -> list[FingerprintSummary]:
        """Fingerprints ranked over [since, until), with call sites and percentiles when known."""

    def statement_windows(
        self, fingerprint: str | None = None, since: float | None = None, until: float | None = None
    ) -> list[StatementWindow]:
        """Stored windows in time order, optionally for one fingerprint."""

    def request_windows(
        self, route: str | None = None, since: float | None = None, until: float | None = None
    ) -> list[RequestWindow]:
        """Stored request windows in time order, optionally for one route."""

    def get_state(self, key: str) -> str | None:
        """A small piece of agent state (e.g. the poller's last snapshot), so a restart resumes."""

    def set_state(self, key: str, value: str) -> None: ...

    def apply_retention(self, now: float, retention: Retention = Retention()) -> None:
        """Roll 10 s buckets older than the raw horizon into 1 min buckets; drop what is too old."""

    def close(self) -> None: ...
