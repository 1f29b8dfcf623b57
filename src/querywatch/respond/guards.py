"""What keeps a rollback from making things worse: the guards, the state they read, and the
shape of what they write on the incident timeline.

A rollback is a deploy made by a machine in a hurry. Each guard answers one question (has this
deploy been rolled back already? did one run a minute ago? is someone deploying right now? is it
too late?) and a "no" becomes an :class:`ActionRefused` with a reason a person can act on. The
state (which deploys were rolled back, when, whether they recovered) is kept in the store, so a
restarted agent, the CLI and the API all see the same history.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from querywatch.errors import InvalidTransition, StoreError
from querywatch.incidents.model import Incident
from querywatch.records import DeployMarker
from querywatch.store.base import Store
from querywatch.timefmt import utc_stamp

STATE_KEY = "respond"
STATE_VERSION = 1
#: Refusals recorded by the automatic path are remembered this long, then forgotten.
FORGET_NOTED_S = 7 * 24 * 3600.0

Trigger = Literal["auto", "manual"]
ActionName = Literal["rollback", "runbook", "evidence_check", "recovery_check", "freeze", "refused"]
Outcome = Literal[
    "ok",
    "failed",
    "timeout",
    "dry_run",
    "refused",
    "recovered",
    "not_recovered",
    "confirmed",
    "gone",
]


class ActionRefused(InvalidTransition):
    """A guard said no. ``guard`` names which one; the message says why and what to do."""

    def __init__(self, guard: str, reason: str) -> None:
        self.guard = guard
        self.reason = reason
        super().__init__(reason)


class RollbackRefused(ActionRefused):
    """A rollback was refused by a guard (already rolled back, cooldown, deploy in progress…)."""


def event_data(
    action: ActionName,
    outcome: Outcome,
    *,
    trigger: Trigger,
    deploy_id: str | None = None,
    version: str | None = None,
    target_version: str | None = None,
    command: str | None = None,
    exit_code: int | None = None,
    output: str | None = None,
    duration_s: float | None = None,
    step: str | None = None,
    reason: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The ``data`` of every timeline event the responder writes (the postmortem reads it).

    Every key is always present (``None`` when it does not apply), so readers need no guessing.
    """
    return {
        "action": action,
        "outcome": outcome,
        "trigger": trigger,
        "deploy_id": deploy_id,
        "version": version,
        "target_version": target_version,
        "command": command,
        "exit_code": exit_code,
        "output": output,
        "duration_s": None if duration_s is None else round(duration_s, 3),
        "step": step,
        "reason": reason,
        **extra,
    }


# -- state ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class RollbackRecord:
    """One rollback that ran (or is running) for one deploy. Dry runs leave none."""

    deploy_id: str
    incident: str
    environment: str
    trigger: str
    by: str | None
    version: str
    target_version: str
    started_at: float
    outcome: str = "running"  # "running" | "ok" | "failed" | "timeout"
    completed_at: float | None = None
    verified: str | None = None  # "recovered" | "not_recovered"
    verified_at: float | None = None


@dataclass(slots=True)
class ResponseState:
    """Everything the guards remember, as one JSON value in the store's state table."""

    rollbacks: dict[str, RollbackRecord] = field(default_factory=dict)
    last_rollback: dict[str, float] = field(default_factory=dict)  # environment -> started_at
    noted: dict[str, float] = field(default_factory=dict)  # refusals already on a timeline

    @classmethod
    def load(cls, store: Store) -> ResponseState:
        return cls.from_text(store.get_state(STATE_KEY))

    @classmethod
    def update(
        cls, store: Store, change: Callable[[ResponseState], None], now: float | None = None
    ) -> ResponseState:
        """Apply ``change`` atomically: two agents sharing a store cannot both claim one deploy
        (a guard raising inside ``change`` writes nothing)."""
        changed: list[ResponseState] = []

        def apply(text: str | None) -> str:
            state = cls.from_text(text)
            change(state)
            changed.append(state)
            return state.to_text(now)

        store.update_state(STATE_KEY, apply)
        return changed[-1]

    @classmethod
    def from_text(cls, text: str | None) -> ResponseState:
        if text is None:
            return cls()
        try:
            data = json.loads(text)
            if data.get("version") != STATE_VERSION:
                raise ValueError(f"unknown version {data.get('version')!r}")
            return cls(
                {k: RollbackRecord(**v) for k, v in data.get("rollbacks", {}).items()},
                {str(k): float(v) for k, v in data.get("last_rollback", {}).items()},
                {str(k): float(v) for k, v in data.get("noted", {}).items()},
            )
        except (ValueError, TypeError, AttributeError) as err:
            raise StoreError(
                f"the rollback state (key {STATE_KEY!r} of the store's state table) is "
                f"unreadable: {err}"
            ) from err

    def to_text(self, now: float | None = None) -> str:
        now = time.time() if now is None else now
        self.noted = {k: at for k, at in self.noted.items() if now - at <= FORGET_NOTED_S}
        return json.dumps(
            {
                "version": STATE_VERSION,
                "rollbacks": {k: asdict(v) for k, v in self.rollbacks.items()},
                "last_rollback": self.last_rollback,
                "noted": self.noted,
            },
            sort_keys=True,
        )


# -- guards ---------------------------------------------------------------------------------------


def check_rollback_target(incident: Incident, deploy: DeployMarker, environment: str) -> None:
    """Something to roll back for, and to: the incident is not resolved, the deploy is this
    environment's, is not itself a rollback, and has a previous version to go back to."""
    if incident.status == "resolved":
        raise RollbackRefused(
            "resolved", f"incident {incident.id} is resolved: nothing to roll back for"
        )
    if deploy.environment != environment:
        raise RollbackRefused(
            "environment",
            f"deploy {deploy.id} is in {deploy.environment}, but these rollback settings are "
            f"for {environment}: use --env {deploy.environment}",
        )
    if deploy.rollback:
        raise RollbackRefused(
            "is_rollback",
            f"deploy {deploy.id} is itself a rollback: roll forward or back by hand",
        )
    if not deploy.previous_version:
        raise RollbackRefused(
            "no_previous_version",
            f"deploy {deploy.id} has no previous version to roll back to (it is the first "
            f"deploy recorded in {deploy.environment})",
        )


def check_once_per_deploy(state: ResponseState, deploy: DeployMarker) -> None:
    """At most one rollback per deploy: a failed, timed-out or unhelpful one counts too."""
    done = state.rollbacks.get(deploy.id)
    if done is None:
        return
    how = {
        "running": "is already being rolled back",
        "ok": "was already rolled back",
        "failed": "already had a rollback that failed",
        "timeout": "already had a rollback that timed out",
    }.get(done.outcome, "was already rolled back")
    who = f" by {done.by}" if done.by else ""
    after = ""
    if done.verified == "not_recovered":
        after = "; it did not help, so querywatch will not try again"
    raise RollbackRefused(
        "once_per_deploy",
        f"deploy {deploy.id} {how} at {utc_stamp(done.started_at)}{who} (incident {done.incident})"
        f"{after}: at most one rollback per deploy; run your deploy tool by hand if needed",
    )


def check_cooldown(state: ResponseState, environment: str, cooldown_s: float, now: float) -> None:
    """No second rollback in an environment within ``rollback_cooldown_s`` of the last one."""
    last = state.last_rollback.get(environment)
    if last is None or now - last >= cooldown_s:
        return
    raise RollbackRefused(
        "cooldown",
        f"a rollback ran in {environment} {now - last:.0f} s ago (at {utc_stamp(last)}); "
        f"rollback_cooldown_s = {cooldown_s:g} allows the next one at "
        f"{utc_stamp(last + cooldown_s)}",
    )


def check_no_deploy_in_progress(
    store: Store, deploy: DeployMarker, *, guard: type[ActionRefused] = RollbackRefused
) -> None:
    """Never act while a deploy is rolling out, or when a newer deploy replaced this one."""
    latest = store.latest_deploy(deploy.environment)
    if latest is not None and latest.id != deploy.id:
        state = "still in progress" if latest.finished_at is None else "finished"
        raise guard(
            "deploy_in_progress",
            f"a newer deploy {latest.id} (version {latest.version}) started in "
            f"{deploy.environment} at {utc_stamp(latest.started_at)} and is {state}: deploy "
            f"{deploy.id} is no longer the one running",
        )
    if deploy.finished_at is None:
        raise guard(
            "deploy_in_progress",
            f"deploy {deploy.id} (version {deploy.version}) is still in progress: wait for it "
            "to finish (querywatch deploy finish) before rolling back",
        )


def check_window(deploy: DeployMarker, window_s: float, now: float) -> None:
    """Only within ``rollback_window_s`` after the deploy finished: later, other changes pile up
    on top of it and going back is no longer a clean undo."""
    finished = deploy.finished_at
    if finished is None or now - finished <= window_s:
        return
    raise RollbackRefused(
        "window",
        f"deploy {deploy.id} finished {now - finished:.0f} s ago (at {utc_stamp(finished)}), "
        f"past rollback_window_s = {window_s:g}: roll back by hand if it is still right",
    )


def check_migration(incident: Incident, deploy: DeployMarker, *, force: bool) -> None:
    """Freeze when the deploy's migration makes going back unsafe: the previous version may not
    run against the new schema, so a person decides (and may force it)."""
    reason = deploy.rollback_unsafe_reason
    if reason and not force:
        raise RollbackRefused(
            "migration",
            f"freeze: rollback unsafe: {reason}; version {deploy.previous_version} may not run "
            "against the new schema, so a person decides (querywatch rollback "
            f"{incident.id} --force-unsafe-migration)",
        )
