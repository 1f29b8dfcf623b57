"""The one interface every source of statement statistics implements.

Adding a source is adding a module with a class that satisfies :class:`Source`; the agent only
polls, persists the opaque state, and closes. Everything a source yields is a
:class:`~querywatch.records.StatementWindow`, so nothing downstream knows where it came from.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from querywatch.records import StatementWindow


@runtime_checkable
class Source(Protocol):
    """A poller of statement statistics.

    ``poll`` returns what happened since the previous poll (never cumulative totals, never negative
    numbers); it raises :class:`~querywatch.errors.SourceError` subclasses with a one-line message
    when it cannot read, and must recover by itself on a later poll. ``snapshot_state`` /
    ``restore_state`` carry whatever the source needs so an agent restart neither double counts nor
    loses the interval it was down.
    """

    name: str

    def poll(self, now: float) -> list[StatementWindow]:
        """One window per fingerprint for what happened since the last poll, at ``now``."""
        ...

    def snapshot_state(self) -> str:
        """JSON text the agent stores after each successful poll."""
        ...

    def restore_state(self, state: str) -> None:
        """Resume from a stored :meth:`snapshot_state`; call before the first poll."""
        ...

    def close(self) -> None:
        """Release connections and files; the source may not be polled afterwards."""
        ...
