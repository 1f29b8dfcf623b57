"""Celery: every task run is recorded as a request to the route ``task:<task name>``.

``QueryWatch(celery_app)`` connects to Celery's ``task_prerun`` and ``task_postrun`` signals: the
statements a task issues between them count toward its run (database time and calls, the
fingerprints it repeats: an N+1 in a task is named ``task:shop.send_receipts``), and the run is
recorded with its duration and whether it failed (``FAILURE`` or ``RETRY``). Statements are
recorded by instrumenting the worker's engines (``qw.instrument(engine)``) or by sharing the
recorder of a web integration in the same process (``recorder=``).

Options are keyword arguments over the environment and ``querywatch.toml``: ``store``,
``slo_ms``, ``release``, ``repeat_threshold``, ``flush_interval``.
"""

from __future__ import annotations

import threading
from typing import Any, Unpack

from celery import signals  # type: ignore[import-untyped]

from querywatch.capture.jobs import Job, JobTracker
from querywatch.capture.recorder import Recorder
from querywatch.contrib.integration import CaptureOptions, Integration, capture_settings

ROUTE_PREFIX = "task:"
ERROR_STATES = frozenset({"FAILURE", "RETRY"})


class QueryWatch(Integration):
    """Set up where the worker creates its Celery app; ``options``: ``store``, ``slo_ms``,
    ``release``, ``repeat_threshold``, ``flush_interval``. Tasks of other Celery apps in the same
    process are left alone."""

    def __init__(
        self,
        app: Any,
        *,
        recorder: Recorder | None = None,
        **options: Unpack[CaptureOptions],
    ) -> None:
        settings = capture_settings(options, source="QueryWatch()")
        super().__init__(settings, recorder)
        self.app = app
        self.tracker = JobTracker(
            self.recorder,
            slo_ms=settings.slo_ms,
            repeat_threshold=settings.repeat_threshold,
            release=settings.release,
        )
        self._runs: dict[str, Job] = {}
        self._lock = threading.Lock()
        signals.task_prerun.connect(self._prerun, weak=False)
        signals.task_postrun.connect(self._postrun, weak=False)
        # A prefork child may leave without running exit handlers: write before it goes.
        signals.worker_process_shutdown.connect(self._process_ends, weak=False)

    def _prerun(self, task_id: str | None = None, task: Any = None, **_: Any) -> None:
        if task is None or task_id is None or task.app is not self.app:
            return
        run = self.tracker.start(ROUTE_PREFIX + str(task.name))
        with self._lock:
            self._runs[task_id] = run

    def _postrun(self, task_id: str | None = None, state: str | None = None, **_: Any) -> None:
        with self._lock:
            run = self._runs.pop(task_id, None) if task_id is not None else None
        if run is not None:
            self.tracker.finish(run, error=state in ERROR_STATES)

    def _process_ends(self, **_: Any) -> None:
        self.recorder.flush()

    def close(self) -> None:
        """Stop recording tasks, then as :meth:`Integration.close`."""
        signals.task_prerun.disconnect(self._prerun)
        signals.task_postrun.disconnect(self._postrun)
        signals.worker_process_shutdown.disconnect(self._process_ends)
        super().close()
