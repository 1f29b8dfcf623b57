"""The agent loop: poll a source, store what it yields, keep its state so a restart resumes.

A source that cannot be read does not stop the agent: it reports "monitoring is blind", keeps
polling, and reports when it can see again. Nothing the store already holds is touched. While a
canary rollout of the environment runs (``querywatch canary start``), each poll also steps it
(:meth:`querywatch.respond.canary.CanaryRollout.step`) before the regression check, so `watch`
alone drives a rollout as ``querywatch canary watch`` does.

After every poll the agent writes an :class:`AgentHealth` row (key ``agent/<state key>``): when it
polled, how long the poll took, whether it is blind, and its own memory and CPU, so `serve`'s
/metrics can tell a stopped, slow or blind agent apart from a quiet database.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields

from querywatch.capture.base import Source
from querywatch.config import DEFAULT_INTERVAL_S
from querywatch.errors import QuerywatchError, SourceError
from querywatch.monitor import Monitor
from querywatch.records import StatementWindow
from querywatch.respond.alerts import Alert, blind_alert, recovered_alert
from querywatch.respond.notifier import Notifier
from querywatch.store.base import Retention, Store

NOTIFIER_STATE = "notifier"
#: State keys of :class:`AgentHealth` rows: this prefix and the agent's own state key.
HEALTH_PREFIX = "agent/"

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


@dataclass(frozen=True, slots=True)
class AgentHealth:
    """What an agent says of itself after each poll (read by `serve`'s /metrics).

    ``polls``, ``failed_polls`` and ``cpu_seconds`` count from the agent process's start
    (``started_at``), so a restart resets them as Prometheus expects of a counter.
    """

    agent: str  # the agent's state key: its source and (redacted) target
    at: float  # when the last poll started
    duration_s: float  # how long it took, detection included
    blind: bool  # the source could not be read at the last poll
    interval_s: float
    polls: int
    failed_polls: int
    started_at: float
    last_success_at: float | None = None
    blind_since: float | None = None
    rss_bytes: int | None = None
    cpu_seconds: float = 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> AgentHealth | None:
        """The row as written, or ``None`` for one this version cannot read."""
        try:
            data = json.loads(text)
            known = {f.name for f in fields(cls)}
            return cls(**{k: v for k, v in data.items() if k in known})
        except (ValueError, TypeError, AttributeError):
            return None


def _resident_bytes() -> int | None:
    """This process's resident memory now (Linux /proc); ``None`` where it cannot be read."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


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
        self._last_success: float | None = None
        self._started_at = clock()
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
        began = time.perf_counter()
        self._poll(now, strict=strict)
        self._record_health(now, time.perf_counter() - began)

    def _poll(self, now: float, *, strict: bool) -> None:
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
        self._last_success = now
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

    def _record_health(self, at: float, duration_s: float) -> None:
        cpu = os.times()
        health = AgentHealth(
            agent=self.state_key,
            at=at,
            duration_s=duration_s,
            blind=self._blind_since is not None,
            interval_s=self.interval,
            polls=self.stats.polls,
            failed_polls=self.stats.failed_polls,
            started_at=self._started_at,
            last_success_at=self._last_success,
            blind_since=self._blind_since,
            rss_bytes=_resident_bytes(),
            cpu_seconds=cpu.user + cpu.system,
        )
        self.store.set_state(HEALTH_PREFIX + self.state_key, health.to_json())

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
