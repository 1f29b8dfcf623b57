"""The one storage interface: what the store keeps (rows, windows, state, deploy markers) and
the transaction every write and read runs in.

SQLite (embedded default) and PostgreSQL (shared) implement :class:`Store` through
:class:`~querywatch.store.sql_store.SqlStore`, which runs the same SQL on both. Higher layers that
keep their own tables (incidents) run their SQL through :meth:`Store.transaction` and :class:`Tx`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from querywatch.records import (
    DeployMarker,
    FingerprintSummary,
    RepeatWindow,
    RequestWindow,
    StatementWindow,
)

SortKey = Literal["total", "mean", "calls", "p95"]
MINUTE = 60
MAX_CALL_SITES = 20  # per fingerprint: enough to find the code, bounded for hot shared helpers

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Retention:
    """How long each resolution is kept: 10 s buckets for a day, 1 min buckets for two weeks."""

    raw_seconds: int = 24 * 3600
    minute_seconds: int = 14 * 24 * 3600


#: State kept per deploy, under ``prefix + deploy id`` (the schema snapshot taken at its start,
#: the plans kept before it): it goes with the 1-minute windows' horizon, counted from the
#: deploy's start, since by then no detection compares against that deploy any more.
DEPLOY_STATE_PREFIXES = ("schema:", "plans:before:")


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
        release: str | None = None,
    ) -> list[FingerprintSummary]:
        """Fingerprints ranked over [since, until), with call sites and percentiles when known.

        Each fingerprint's figures come from one source, the one that saw most of its calls in
        the range (named in ``source``): two sources watching one database never add up.
        ``release`` ranks one release's calls only; ``None`` sums every release's.
        """

    def statement_windows(
        self,
        fingerprint: str | None = None,
        since: float | None = None,
        until: float | None = None,
        source: str | None = None,
        release: str | None = None,
    ) -> list[StatementWindow]:
        """Stored windows in time order, optionally for one fingerprint.

        Without ``source``, each fingerprint's windows come from one source, the one that saw
        most of its calls in the range, so summing them never counts a call twice. ``release``
        reads one release's windows; ``None`` sums the releases of each bucket into one window
        (its ``release`` is the one release seen, or ``""`` when several were).
        """

    def fold_statement_windows(
        self,
        consume: Callable[[Iterator[StatementWindow]], T],
        since: float | None = None,
        until: float | None = None,
        source: str | None = None,
        release: str | None = None,
    ) -> T:
        """``consume`` run over the windows :meth:`statement_windows` returns (no call sites),
        read one at a time from the cursor inside one read transaction; its result returned.

        For readers that fold many windows into a little (detection's baselines): the windows
        are never all held. ``consume`` may run again from the start if the connection drops.
        """

    def fold_request_windows(
        self,
        consume: Callable[[Iterator[RequestWindow]], T],
        since: float | None = None,
        until: float | None = None,
        release: str | None = None,
    ) -> T:
        """``consume`` run over the windows :meth:`request_windows` returns, as above."""

    def request_windows(
        self,
        route: str | None = None,
        since: float | None = None,
        until: float | None = None,
        release: str | None = None,
    ) -> list[RequestWindow]:
        """Stored request windows in time order, optionally for one route and one release
        (``None``: each bucket's releases summed, as for statement windows)."""

    def get_state(self, key: str) -> str | None:
        """A small piece of agent state (e.g. the poller's last snapshot), so a restart resumes."""

    def set_state(self, key: str, value: str) -> None: ...

    def update_state(self, key: str, change: Callable[[str | None], str]) -> str:
        """Read, change and write one state value in one transaction that no other writer of
        the same key (another process included) can interleave with; returns the new value.
        An exception in ``change`` writes nothing."""

    def apply_retention(self, now: float, retention: Retention = Retention()) -> None:
        """Roll 10 s buckets older than the raw horizon into 1 min buckets; drop what is too old
        (per-deploy state of deploys older than that too; the markers themselves stay)."""

    def record_deploy(self, marker: DeployMarker) -> None:
        """Record a deploy, or update the one with the same id (e.g. to set ``finished_at``).

        Fields given as ``None`` keep what is stored, so a finish need not repeat the commit or
        author; ``rollback`` once recorded stays set. Deploy markers are never expired.
        """

    def deploys(
        self,
        since: float | None = None,
        until: float | None = None,
        environment: str | None = None,
    ) -> list[DeployMarker]:
        """Deploys that started in [since, until), in start order, optionally in one environment."""

    def latest_deploy(self, environment: str | None = None) -> DeployMarker | None:
        """The deploy that started last (optionally in one environment), or ``None`` if none."""

    def write_repeats(self, windows: Sequence[RepeatWindow]) -> None:
        """Merge N+1 repeat windows in (same route, fingerprint and bucket: requests and repeats
        add, the max is the max of both)."""

    def repeat_windows(
        self,
        route: str | None = None,
        fingerprint: str | None = None,
        since: float | None = None,
        until: float | None = None,
        release: str | None = None,
    ) -> list[RepeatWindow]:
        """Stored repeat windows in time order, optionally for one route and/or fingerprint and
        one release (``None``: each bucket's releases summed)."""

    def transaction(self, fn: Callable[[Tx], T], *, write: bool = True) -> T:
        """Run ``fn`` in one transaction: committed if it returns, rolled back if it raises.

        How higher layers keep their own tables (incidents) with the store's SQL and guarantees;
        ``write=False`` for reads (a read-only store refuses writes).
        """

    def close(self) -> None: ...


class Tx(Protocol):
    """One open transaction, as the shared SQL sees it (``?`` placeholders on every backend)."""

    def run(self, sql: str, params: Sequence[object] = ()) -> None: ...

    def run_many(self, sql: str, rows: Iterable[Sequence[object]]) -> None: ...

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]: ...

    def each(self, sql: str, params: Sequence[object] = ()) -> Iterator[tuple[Any, ...]]:
        """The rows one at a time (for reads too large to hold twice), inside the transaction."""
