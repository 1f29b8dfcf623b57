"""A progressive rollout's state: one JSON value per environment in the store's state table.

Key ``canary/<environment>``: which release is the canary and which the stable one, the steps
(traffic percentages), where it stands, every verdict with its time, every action it ran (weight,
promotion, abort, rollback) with its outcome, and how it ended. Kept in the store so the CLI, the
API, a ``canary watch`` loop and a restarted process all see one rollout, and two of them cannot
both move it (:func:`update_rollout` changes it under the store's lock).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from querywatch.errors import InvalidTransition, NotFound, StoreError
from querywatch.store.base import Store
from querywatch.timefmt import utc_stamp

STATE_PREFIX = "canary/"
STATE_VERSION = 1
#: Verdicts and events kept per rollout: a rollout judged every 10 s for an hour makes 360; the
#: oldest go first (the first and the decisive ones are also on the events and the incident).
MAX_VERDICTS = 200
MAX_EVENTS = 200

RolloutStatus = Literal["running", "promoted", "aborted"]


def state_key(environment: str) -> str:
    return f"{STATE_PREFIX}{environment}"


def fails_in_a_row(statuses: Iterable[str]) -> int:
    """How many of the latest verdicts failed in a row (an inconclusive or a pass ends the run)."""
    run = 0
    for status in statuses:
        run = run + 1 if status == "fail" else 0
    return run


def abort_due(statuses: Iterable[str], threshold: int) -> bool:
    """The abort rule, shared by the rollout driver and the demo: ``threshold`` failing verdicts
    in a row (``canary_fail_threshold``; 1 = the first fail). One failing poll of a benign
    release is noise more often than two in a row (bench/RESULTS.md, "Canary analysis")."""
    return fails_in_a_row(statuses) >= max(threshold, 1)


@dataclass(slots=True)
class VerdictRecord:
    """One analysis of the rollout: when, what it said, at which step and weight."""

    at: float
    status: str  # pass | fail | inconclusive
    reason: str
    step: int
    weight: float
    canary_requests: int = 0
    stable_requests: int = 0
    canary_calls: int = 0
    stable_calls: int = 0
    findings: int = 0


@dataclass(slots=True)
class RolloutEvent:
    """One thing the rollout did (or was refused): the record the postmortem and status read."""

    at: float
    action: str  # start | weight | promote | abort | rollback | incident
    outcome: str  # ok | failed | timeout | dry_run | recorded | refused | not_configured
    message: str
    by: str | None = None
    weight: float | None = None
    command: str | None = None
    exit_code: int | None = None
    output: str | None = None
    duration_s: float | None = None
    error: str | None = None


@dataclass(slots=True)
class Rollout:
    """A canary rollout in one environment."""

    environment: str
    canary_release: str
    stable_release: str
    steps: list[float]
    started_at: float
    started_by: str | None = None
    deploy_id: str | None = None  # the canary's deploy marker, when the store has one
    step: int = 0  # index into steps
    weight: float = 0.0  # the share of traffic last set (0 after an abort)
    step_started_at: float = 0.0
    status: str = "running"
    aborted_at: float | None = None
    promoted_at: float | None = None
    ended_by: str | None = None
    end_reason: str | None = None
    incident: str | None = None  # opened on a failing verdict
    verdicts: list[VerdictRecord] = field(default_factory=list)
    events: list[RolloutEvent] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def fails_in_a_row(self) -> int:
        return fails_in_a_row(v.status for v in self.verdicts)

    @property
    def last_verdict(self) -> VerdictRecord | None:
        return self.verdicts[-1] if self.verdicts else None

    def record(self, event: RolloutEvent) -> None:
        self.events.append(event)
        del self.events[:-MAX_EVENTS]

    def add_verdict(self, verdict: VerdictRecord) -> None:
        self.verdicts.append(verdict)
        del self.verdicts[:-MAX_VERDICTS]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> dict[str, Any]:
        """For ``--json`` and the API: the state plus readable times."""
        data = self.to_dict()
        data["started"] = utc_stamp(self.started_at)
        data["last_verdict"] = asdict(self.last_verdict) if self.last_verdict else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rollout:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["steps"] = [float(s) for s in values.get("steps", [])]
        values["verdicts"] = [VerdictRecord(**v) for v in values.get("verdicts", [])]
        values["events"] = [RolloutEvent(**e) for e in values.get("events", [])]
        return cls(**values)


def _decode(text: str | None, key: str) -> Rollout | None:
    if text is None:
        return None
    try:
        data = json.loads(text)
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"unknown version {data.get('version')!r}")
        rollout = data.get("rollout")
        return None if rollout is None else Rollout.from_dict(rollout)
    except (ValueError, TypeError, AttributeError, KeyError) as err:
        raise StoreError(
            f"the canary rollout state (key {key!r} of the store's state table) is unreadable: "
            f"{err}"
        ) from err


def _encode(rollout: Rollout | None) -> str:
    body = None if rollout is None else rollout.to_dict()
    return json.dumps({"version": STATE_VERSION, "rollout": body}, sort_keys=True)


def load_rollout(store: Store, environment: str) -> Rollout | None:
    """The environment's latest rollout (running or ended), or ``None`` if it never had one."""
    key = state_key(environment)
    return _decode(store.get_state(key), key)


def require_rollout(store: Store, environment: str) -> Rollout:
    rollout = load_rollout(store, environment)
    if rollout is None:
        raise NotFound(
            f"no canary rollout in {environment}: start one with querywatch canary start "
            "--release NEW --stable CURRENT"
        )
    return rollout


def update_rollout(
    store: Store, environment: str, change: Callable[[Rollout | None], Rollout | None]
) -> Rollout | None:
    """Apply ``change`` atomically (an exception in it writes nothing); returns the new state."""
    key = state_key(environment)
    changed: list[Rollout | None] = []

    def apply(text: str | None) -> str:
        new = change(_decode(text, key))
        changed.append(new)
        return _encode(new)

    store.update_state(key, apply)
    return changed[-1]


def require_running(rollout: Rollout | None, environment: str) -> Rollout:
    """The running rollout, or a conflict saying how the last one ended."""
    if rollout is None:
        raise NotFound(f"no canary rollout in {environment}")
    if not rollout.running:
        at = rollout.aborted_at if rollout.status == "aborted" else rollout.promoted_at
        when = f" at {utc_stamp(at)}" if at is not None else ""
        who = f" by {rollout.ended_by}" if rollout.ended_by else ""
        raise InvalidTransition(
            f"the canary {rollout.canary_release} in {environment} was already "
            f"{rollout.status}{when}{who}: nothing is running"
        )
    return rollout
