"""The request a statement belongs to, so the middleware can add up database time per request.

A ContextVar follows threads (one request per WSGI worker thread) and asyncio tasks alike; tasks a
request spawns inherit the same mutable RequestState, so their statements count toward it too.

Reading a ContextVar right after a network wait costs a few hundred ns (cold caches), so the
statement path reads it only once some middleware exists in the process (``TRACKING.on``).
"""

from __future__ import annotations

import threading
from collections import Counter
from contextvars import ContextVar
from operator import itemgetter, sub
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from querywatch.capture.aggregate import FingerprintState, Raw

FOLD_AT = 4096
"""Statements listed per request before they are folded into totals (bounds memory)."""

_fold_lock = threading.Lock()


class _Tracking:
    __slots__ = ("on",)

    def __init__(self) -> None:
        self.on = False


TRACKING = _Tracking()
"""Set by the first WSGI/ASGI middleware; until then statements skip the ContextVar read."""


class RequestState:
    """The statements of the request in progress; appended to by the hot path.

    The hot path only appends the raw record it also queues for the aggregator (an atomic list
    append, so worker threads of one request may share the state); database time and counts per
    fingerprint are added up once, at request end, with C-level iteration.

    ``release``: the release that serves the request when the middleware knows it (a load
    balancer's header, or its ``release=`` argument); its statements are recorded under it.
    ``None`` leaves each statement under its channel's release.
    """

    __slots__ = ("folded", "folded_ns", "raws", "release")

    def __init__(self, release: str | None = None) -> None:
        self.release = release
        self.raws: list[Raw] = []
        self.folded: Counter[FingerprintState] | None = None
        self.folded_ns = 0

    def fold(self) -> None:
        """Move the listed statements into totals (called every ``FOLD_AT`` statements)."""
        with _fold_lock:
            raws = self.raws
            n = len(raws)
            taken = raws[:n]
            del raws[:n]  # appends racing this land past n and are kept
            if self.folded is None:
                self.folded = Counter()
            self.folded.update(map(_first, taken))
            self.folded_ns += _duration(taken)

    @property
    def db_ns(self) -> int:
        """Database time of the request so far (ns)."""
        return self.folded_ns + _duration(self.raws)

    @property
    def db_calls(self) -> int:
        folded = self.folded
        return len(self.raws) + (folded.total() if folded is not None else 0)

    def counts(self) -> Counter[FingerprintState]:
        """Statements per fingerprint so far."""
        counts = Counter(map(_first, self.raws))
        if self.folded is not None:
            counts.update(self.folded)
        return counts


_first = itemgetter(0)
_t0 = itemgetter(1)
_t1 = itemgetter(2)


def _duration(raws: list[Raw]) -> int:
    return sum(map(sub, map(_t1, raws), map(_t0, raws)))


current_request: ContextVar[RequestState | None] = ContextVar("querywatch_request", default=None)
