"""The agent loop: poll a source, store what it yields, keep its state so a restart resumes.

A source that cannot be read does not stop the agent: it reports "monitoring is blind", keeps
polling, and reports when it can see again. Nothing the store already holds is touched. While a
canary rollout of the environment runs (``querywatch canary start``), each poll also steps it
(:meth:`querywatch.respond.canary.CanaryRollout.step`) before the regression check, so `watch`
alone drives a rollout as ``querywatch canary watch`` does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from querywatch.capture.base import Source
from querywatch.config import DEFAULT_INTERVAL_S
from querywatch.errors import QuerywatchError, SourceError
from querywatch.monitor import Monitor
from querywatch.records import StatementWindow
from querywatch.respond.alerts import Alert, blind_alert, recovered_alert
from querywatch.respond.notifier import Notifier
from querywatch.store.base import Retention, Store

NOTIFIER_STATE = "notifier"

RETENTION_EVERY_S = 600.0


@dataclass(slots=True)
class AgentEvent:
    """Something the user should hear about: a poll's result, blindness, recovery."""

    kind: str  # "polled" | "blind" | "recovered" | "incident" | "canary"
    at: float
    message: str
    windows: list[StatementWindow] = field(default_factory=list)


@dataclass(slots=True)
class AgentStats:
    polls: int = 0
    failed_polls: int = 0
    windows_stored: int = 0


class Agent:
    def __init__(
        self,
        source: Source,
        store: Store,
        *,
        state_key: str,
        interval: float = DEFAULT_INTERVAL_S,
        retention: Retention | None = None,
        on_event: Callable[[AgentEvent], None] = lambda event: None,
        monitor: Monitor | None = None,
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.source = source
        self.store = store
        self.state_key = state_key
        self.interval = interval
        self.retention = retention or Retention()
        self.on_event = on_event
        self.clock = clock
        self.sleep = sleep
        self.monitor = monitor
        self.notifier = notifier
        self.stats = AgentStats()
        self._blind_since: float | None = None
        self._last_retention = 0.0
        saved = store.get_state(state_key)
        if saved is not None:
            source.restore_state(saved)
        if notifier is not None and (sent := store.get_state(NOTIFIER_STATE)) is not None:
            notifier.load_json(sent)  # a restart does not page again for what was already sent

    def poll_once(self, *, strict: bool = False) -> None:
        """One poll. ``strict`` re-raises a source error (used for the first poll: a wrong DSN
        should stop the command, while a database that goes away later should not)."""
        now = self.clock()
        self.stats.polls += 1
        try:
            windows = self.source.poll(now)
        except SourceError as exc:
            if strict:
                raise
            self.stats.failed_polls += 1
            if self._blind_since is None:
                self._blind_since = now
            self.on_event(AgentEvent("blind", now, f"monitoring is blind: {exc}"))
            self._notify(blind_alert(self.source.name, str(exc), self._blind_since))
            return
        if windows:
            self.store.write_windows(windows)
            self.stats.windows_stored += len(windows)
        self.store.set_state(self.state_key, self.source.snapshot_state())
        if self._blind_since is not None:
            since, self._blind_since = self._blind_since, None
            self.on_event(
                AgentEvent("recovered", now, f"source readable again after {now - since:.0f} s")
            )
            self._notify(recovered_alert(self.source.name, since, now))
        self.on_event(AgentEvent("polled", now, f"{len(windows)} fingerprints changed", windows))
        if self.monitor is not None:
            self._step_canary(now)  # first: its verdict decides whether users keep meeting it
            result = self.monitor.check(now)
            self._save_notifier()
            if result.incident is not None and (result.opened or result.alerted):
                verb = "opened" if result.opened else "updated"
                self.on_event(
                    AgentEvent(
                        "incident",
                        now,
                        f"incident {result.incident.id} {verb}: {result.incident.title}",
                    )
                )
        if now - self._last_retention >= RETENTION_EVERY_S:
            self.store.apply_retention(now, self.retention)
            self._last_retention = now

    def _step_canary(self, now: float) -> None:
        """Step the environment's running rollout once; say what it did unless it only held on a
        verdict that did not fail. A failing action or a rollout ended meanwhile is an event,
        not the end of the agent."""
        rollout = self.monitor.canary if self.monitor is not None else None
        if rollout is None:
            return
        try:
            current = rollout.status()
            if current is None or not current.running:
                return
            outcome = rollout.step(now=now)
        except QuerywatchError as exc:
            self.on_event(AgentEvent("canary", now, f"canary: {exc}"))
            return
        verdict, state = outcome.verdict, outcome.rollout
        if outcome.did == "held" and verdict.status != "fail":
            return
        what = {
            "held": f"held at {state.weight:g}% ({state.fails_in_a_row} of "
            f"{rollout.settings.fail_threshold} failing verdicts in a row)",
            "advanced": f"advanced to {state.weight:g}%",
            "promoted": "promoted",
            "aborted": "aborted, its weight set to 0",
        }[outcome.did]
        self.on_event(
            AgentEvent(
                "canary",
                now,
                f"canary {state.canary_release}: {verdict.status}, {what}: {verdict.reason}",
            )
        )

    def _notify(self, alert: Alert) -> None:
        if self.notifier is None:
            return
        self.notifier.notify(alert)
        self.notifier.take_deliveries()
        self._save_notifier()

    def _save_notifier(self) -> None:
        if self.notifier is not None:
            self.store.set_state(NOTIFIER_STATE, self.notifier.to_json())

    def run(self, duration: float | None = None) -> AgentStats:
        """Poll every ``interval`` seconds until ``duration`` elapses (forever when None)."""
        started = self.clock()
        first = True
        while True:
            tick = self.clock()
            self.poll_once(strict=first)
            first = False
            if duration is not None and self.clock() - started >= duration:
                return self.stats
            wait = self.interval - (self.clock() - tick)
            if duration is not None:
                wait = min(wait, started + duration - self.clock())
            if wait > 0:
                self.sleep(wait)
