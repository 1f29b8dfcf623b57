"""The :class:`~querywatch.store.base.Store` over SQL, shared by both backends.

SQLite and PostgreSQL run the same SQL (``?`` placeholders, upserts, the ``qw_*`` merge functions
each backend provides); a backend only supplies a connection and :meth:`SqlStore._run`, which runs
one function inside one transaction. Each method here is one transaction over the module that
holds its SQL: windows, window_reads, retention, deploy_markers, state.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import Literal

from querywatch.errors import StoreError
from querywatch.records import (
    DeployMarker,
    FingerprintSummary,
    RepeatWindow,
    RequestWindow,
    StatementWindow,
)
from querywatch.store import deploy_markers, state, window_reads, windows
from querywatch.store.base import Retention, SortKey, T, Tx
from querywatch.store.migrations import RELEASE_SINCE, check_readable, migrate
from querywatch.store.retention import apply_retention


class SqlStore(ABC):
    """The :class:`Store` over SQL: backends differ only in connection handling."""

    where: str  # the location, safe to print (passwords redacted)
    read_only: bool = False  # opened by a command that only reads: no schema written, no writes
    #: Whether the windows have a release column: a store read without migrating may be older.
    _has_release: bool = True

    @abstractmethod
    def _run(self, fn: Callable[[Tx], T], *, write: bool = True) -> T:
        """Run ``fn`` in one transaction: committed if it returns, rolled back if it raises."""

    @abstractmethod
    def close(self) -> None: ...

    def transaction(self, fn: Callable[[Tx], T], *, write: bool = True) -> T:
        """Run ``fn`` in one transaction (higher layers keep their own tables this way)."""
        return self._run(fn, write=write)

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self, dialect: Literal["sqlite", "postgres"]) -> None:
        self._run(lambda tx: migrate(tx, dialect, self.where, self._before_migrate))

    def _check_readable(self, dialect: Literal["sqlite", "postgres"]) -> None:
        """For a read-only open: the schema must be there, and one these reads understand."""
        version = self._run(lambda tx: check_readable(tx, dialect, self.where), write=False)
        self._has_release = version >= RELEASE_SINCE

    def _read_only_error(self) -> StoreError:
        return StoreError(f"cannot write the store at {self.where}: it was opened read-only")

    def _before_migrate(self, tx: Tx) -> None:  # noqa: B027 - an optional hook, not abstract
        """A hook run first in the migration transaction (PostgreSQL locks and makes its schema)."""

    def _lock_state(self, tx: Tx, key: str) -> None:  # noqa: B027 - an optional hook
        """Serialize writers of ``key``: on SQLite, BEGIN IMMEDIATE already does."""

    def schema_version(self) -> int:
        rows = self._run(lambda tx: tx.rows("SELECT MAX(version) FROM schema_version"), write=False)
        return int(rows[0][0] or 0)

    # -- windows --------------------------------------------------------------------------------

    def write_windows(self, batch: Sequence[StatementWindow]) -> None:
        if batch:
            self._run(lambda tx: windows.write_windows(tx, batch))

    def write_requests(self, batch: Sequence[RequestWindow]) -> None:
        if batch:
            self._run(lambda tx: windows.write_requests(tx, batch))

    def write_repeats(self, batch: Sequence[RepeatWindow]) -> None:
        if batch:
            self._run(lambda tx: windows.write_repeats(tx, batch))

    def top(
        self,
        since: float | None = None,
        until: float | None = None,
        sort: SortKey = "total",
        limit: int = 20,
        release: str | None = None,
    ) -> list[FingerprintSummary]:
        has = self._has_release
        return self._run(
            lambda tx: window_reads.top(tx, since, until, sort, limit, release, has_release=has),
            write=False,
        )

    def statement_windows(
        self,
        fingerprint: str | None = None,
        since: float | None = None,
        until: float | None = None,
        source: str | None = None,
        release: str | None = None,
    ) -> list[StatementWindow]:
        has = self._has_release
        return self._run(
            lambda tx: window_reads.statement_windows(
                tx, fingerprint, since, until, source, release, has_release=has
            ),
            write=False,
        )

    def fold_statement_windows(
        self,
        consume: Callable[[Iterator[StatementWindow]], T],
        since: float | None = None,
        until: float | None = None,
        source: str | None = None,
        release: str | None = None,
    ) -> T:
        has = self._has_release
        return self._run(
            lambda tx: consume(
                window_reads.iter_statement_windows(
                    tx, since, until, source, release, has_release=has
                )
            ),
            write=False,
        )

    def fold_request_windows(
        self,
        consume: Callable[[Iterator[RequestWindow]], T],
        since: float | None = None,
        until: float | None = None,
        release: str | None = None,
    ) -> T:
        has = self._has_release
        return self._run(
            lambda tx: consume(
                window_reads.iter_request_windows(tx, None, since, until, release, has_release=has)
            ),
            write=False,
        )

    def request_windows(
        self,
        route: str | None = None,
        since: float | None = None,
        until: float | None = None,
        release: str | None = None,
    ) -> list[RequestWindow]:
        has = self._has_release
        return self._run(
            lambda tx: window_reads.request_windows(
                tx, route, since, until, release, has_release=has
            ),
            write=False,
        )

    def repeat_windows(
        self,
        route: str | None = None,
        fingerprint: str | None = None,
        since: float | None = None,
        until: float | None = None,
        release: str | None = None,
    ) -> list[RepeatWindow]:
        has = self._has_release
        return self._run(
            lambda tx: window_reads.repeat_windows(
                tx, route, fingerprint, since, until, release, has_release=has
            ),
            write=False,
        )

    def apply_retention(
        self,
        now: float,
        retention: Retention = Retention(),  # noqa: B008 - frozen, so one shared default is safe
    ) -> None:
        self._run(lambda tx: apply_retention(tx, now, retention))

    # -- state ----------------------------------------------------------------------------------

    def get_state(self, key: str) -> str | None:
        return self._run(lambda tx: state.get_state(tx, key), write=False)

    def set_state(self, key: str, value: str) -> None:
        self._run(lambda tx: state.set_state(tx, key, value))

    def update_state(self, key: str, change: Callable[[str | None], str]) -> str:
        def update(tx: Tx) -> str:
            self._lock_state(tx, key)
            return state.update_state(tx, key, change)

        return self._run(update)

    # -- deploys --------------------------------------------------------------------------------

    def record_deploy(self, marker: DeployMarker) -> None:
        self._run(lambda tx: deploy_markers.record_deploy(tx, marker))

    def deploys(
        self,
        since: float | None = None,
        until: float | None = None,
        environment: str | None = None,
    ) -> list[DeployMarker]:
        return self._run(
            lambda tx: deploy_markers.deploys(tx, since, until, environment), write=False
        )

    def latest_deploy(self, environment: str | None = None) -> DeployMarker | None:
        return self._run(lambda tx: deploy_markers.latest_deploy(tx, environment), write=False)
