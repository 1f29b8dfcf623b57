"""Jobs as routes: a background task gets what the middleware gives a request.

A Celery task, an RQ job or a cron script issues statements outside any HTTP request, so an N+1
or a slow query in it would have no route to be attributed to. ``JobTracker.start(route)`` opens
the same per-request state the WSGI/ASGI middleware opens (a ContextVar the statement path reads)
and ``finish`` records it as one request to ``route`` (``task:send_invoice``): duration, error,
database time and calls, and the fingerprints it repeated (the N+1 signal).

Runners with a "before" and an "after" hook (Celery's ``task_prerun`` / ``task_postrun``) call
``start`` and ``finish`` from them; anything else wraps the job in ``with tracker.track(route):``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import Token
from dataclasses import dataclass
from time import perf_counter_ns

from querywatch.capture.context import RequestState, current_request
from querywatch.capture.middleware import HasAggregator, _Base
from querywatch.config import DEFAULT_SLO_MS


@dataclass(slots=True)
class Job:
    """One job in progress (what ``start`` hands back for ``finish``)."""

    route: str
    user: str | None
    state: RequestState
    token: Token[RequestState | None]
    t0: int


def _no_route(_: object) -> str:
    raise TypeError("a JobTracker is told its route by start()")


def _no_user(_: object) -> None:
    return None


class JobTracker(_Base):
    """Records jobs as requests to their route; arguments as for the WSGI middleware.

    ``slo_ms``: a job slower than this counts as failed for its user (jobs usually have none).
    ``release``: tags the jobs and their statements; default the recorder's.
    """

    def __init__(
        self,
        recorder: HasAggregator,
        *,
        slo_ms: float = DEFAULT_SLO_MS,
        repeat_threshold: int | None = None,
        release: str | None = None,
    ) -> None:
        super().__init__(recorder, _no_route, _no_user, slo_ms, repeat_threshold, release)

    def start(self, route: str, user: str | None = None) -> Job:
        """Statements this context (thread, task) runs from now on count toward the job."""
        state = self._state(None)
        token = current_request.set(state)
        return Job(route, user, state, token, perf_counter_ns())

    def finish(self, job: Job, *, error: bool = False) -> None:
        """Record the job (call once, in the context that started it)."""
        try:
            current_request.reset(job.token)
        except ValueError:  # finished from another context than the one that started it
            current_request.set(None)
        self._finish(job.route, job.user, job.t0, job.state, error)

    @contextmanager
    def track(self, route: str, user: str | None = None) -> Iterator[Job]:
        """``with tracker.track("job:nightly-report"):`` — an exception counts as an error."""
        job = self.start(route, user)
        error = True
        try:
            yield job
            error = False
        finally:
            self.finish(job, error=error)
