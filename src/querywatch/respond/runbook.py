"""Runbook steps: named commands such as the report's "database cache flush".

A step is configured once, in the config file, and run the same way every time: after a
rollback (``after_rollback = true``) or on demand (``querywatch runbook run NAME --incident ID``),
under the guards of :class:`Runbook`, with its outcome on the incident timeline::

    [runbook.cache-flush]
    command = "redis-cli -h cache FLUSHDB"
    description = "Flush the query cache the bad release filled with slow results"
    after_rollback = true
    timeout_s = 60
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from querywatch.deploys import find_deploy
from querywatch.errors import ConfigError, NotFound
from querywatch.incidents import service
from querywatch.incidents.model import TimelineEvent
from querywatch.respond.actions import (
    Action,
    ActionContext,
    ActionOutcome,
    CommandAction,
    MissingValue,
)
from querywatch.respond.guards import ActionRefused, Trigger, event_data
from querywatch.respond.settings import RollbackSettings
from querywatch.respond.timeline import ResponseTimeline
from querywatch.store.base import Store

KEYS = ("command", "after_rollback", "timeout_s", "description")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True, slots=True)
class RunbookStep:
    """One named step. ``action`` is usually a :class:`CommandAction` built from ``command``."""

    name: str
    action: Action
    after_rollback: bool = False
    timeout_s: float | None = None  # None: the rollback timeout (rollback_timeout_s)
    description: str = ""

    @property
    def command(self) -> str:
        """The template as configured (or the action's label)."""
        return self.action.describe()

    @classmethod
    def from_command(
        cls,
        name: str,
        command: str,
        *,
        after_rollback: bool = False,
        timeout_s: float | None = None,
        description: str = "",
        source: str | None = None,
        cwd: Path | None = None,
    ) -> RunbookStep:
        action = CommandAction(command, setting=f"[runbook.{name}] command", source=source, cwd=cwd)
        return cls(name, action, after_rollback, timeout_s, description)


def parse_runbook(tables: Mapping[str, Any], source: str = "") -> dict[str, RunbookStep]:
    """The ``[runbook.<name>]`` tables of a config file as steps, in file order.

    Anything wrong (a missing command, an unknown key, a bad placeholder, a timeout that is not a
    positive number) is a ConfigError naming the file and the step.
    """
    steps: dict[str, RunbookStep] = {}
    where = source or None
    for name, table in tables.items():
        label = f"[runbook.{name}]"
        if not _NAME.fullmatch(name):
            raise ConfigError(
                f"{label}: a step name is 1-64 letters, digits, '.', '_' or '-'",
                source=where,
                setting=label,
            )
        if not isinstance(table, Mapping):
            raise ConfigError(
                f"{label} must be a table with a command, e.g. "
                f'[runbook.{name}] command = "./flush-cache.sh"',
                source=where,
                setting=label,
            )
        unknown = sorted(set(table) - set(KEYS))
        if unknown:
            raise ConfigError(
                f"{label}: unknown key {unknown[0]!r} (known: {', '.join(KEYS)})",
                source=where,
                setting=label,
            )
        command = table.get("command")
        if not isinstance(command, str) or not command.strip():
            raise ConfigError(
                f"{label}: command is required: the command line to run (no shell), e.g. "
                '"./flush-cache.sh {environment}"',
                source=where,
                setting=label,
            )
        after = table.get("after_rollback", False)
        if not isinstance(after, bool):
            raise ConfigError(
                f"{label}: after_rollback must be true or false", source=where, setting=label
            )
        timeout = table.get("timeout_s")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
        ):
            raise ConfigError(
                f"{label}: timeout_s must be a number of seconds greater than 0",
                source=where,
                setting=label,
            )
        description = table.get("description", "")
        if not isinstance(description, str):
            raise ConfigError(f"{label}: description must be text", source=where, setting=label)
        steps[name] = RunbookStep.from_command(
            name,
            command,
            after_rollback=after,
            timeout_s=None if timeout is None else float(timeout),
            description=" ".join(description.split()),
            source=where,
        )
    return steps


def runbook_from_config(cfg: Mapping[str, Any]) -> dict[str, RunbookStep]:
    """The steps of a loaded :class:`querywatch.config.Config` (none for a plain mapping)."""
    return parse_runbook(getattr(cfg, "runbook", {}) or {}, getattr(cfg, "source", ""))


@dataclass(frozen=True, slots=True)
class StepResult:
    """What one step did: ``outcome`` is ok, failed, timeout or dry_run."""

    step: str
    outcome: str
    command: str
    result: ActionOutcome | None  # None for a dry run
    event: TimelineEvent

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "outcome": self.outcome,
            "command": self.command,
            "exit_code": None if self.result is None else self.result.exit_code,
            "duration_s": None if self.result is None else round(self.result.duration_s, 3),
            "output": None if self.result is None else self.result.output,
            "error": None if self.result is None else self.result.error,
        }


def run_step(
    store: Store,
    step: RunbookStep,
    context: ActionContext,
    *,
    trigger: Trigger,
    dry_run: bool,
    timeout_s: float,
    by: str | None = None,
    at: float | None = None,
) -> StepResult:
    """Run one step (or, in a dry run, say what would run) and put it on the timeline.

    The guards that decide whether it may run at all are the caller's (:class:`Runbook`); this
    runs and records.
    """
    timeout = step.timeout_s if step.timeout_s is not None else timeout_s
    command = step.action.describe(context)
    common: dict[str, Any] = {
        "trigger": trigger,
        "deploy_id": context.deploy_id,
        "version": context.version,
        "target_version": context.previous_version,
        "command": command,
        "step": step.name,
    }
    started = time.time() if at is None else at
    if dry_run:
        message = f"dry run: runbook step {step.name} would run: {command}"
        data = event_data("runbook", "dry_run", **common)
        event = TimelineEvent(started, "action", message, by, (), data)
        service.record_action(store, context.incident, message, by=by, at=started, data=data)
        return StepResult(step.name, "dry_run", command, None, event)
    outcome = step.action.run(context, timeout)
    done_at = started + outcome.duration_s if at is not None else time.time()
    if outcome.ok:
        message = f"runbook step {step.name} succeeded in {outcome.duration_s:.1f} s: {command}"
    else:
        message = f"runbook step {step.name} {outcome.status}: {outcome.error}"
    data = event_data(
        "runbook",
        outcome.status,
        exit_code=outcome.exit_code,
        output=outcome.output,
        duration_s=outcome.duration_s,
        reason=outcome.error,
        **common,
    )
    event = TimelineEvent(done_at, "action", message, by, (), data)
    service.record_action(store, context.incident, message, by=by, at=done_at, data=data)
    return StepResult(step.name, outcome.status, command, outcome, event)


class Runbook:
    """The configured steps of one environment, run under guards: on demand, or after a rollback.

    A step's event goes on the timeline as it runs and ``on_event`` (the timeline's) hears it;
    its timeout is its own ``timeout_s`` or ``rollback_timeout_s``.
    """

    def __init__(
        self,
        store: Store,
        steps: Mapping[str, RunbookStep],
        settings: RollbackSettings,
        timeline: ResponseTimeline,
    ) -> None:
        self.store = store
        self.steps: dict[str, RunbookStep] = dict(steps)
        self.settings = settings
        self.timeline = timeline

    def run(self, name: str, incident_id: str, *, by: str, dry_run: bool, now: float) -> StepResult:
        """Run one step for an incident because a person asked.

        Guards: the step must exist, the incident must exist, no deploy may be rolling out in
        the environment, and the values its command names must be known; dry run and the
        timeout apply. Raises NotFound or ActionRefused (also written on the timeline).
        """
        incident = service.get_incident(self.store, incident_id)
        step = self.steps.get(name)
        if step is None:
            known = ", ".join(self.steps) or "none: add a [runbook.<name>] table to querywatch.toml"
            raise NotFound(f"no runbook step {name!r} (configured: {known})")
        deploy = find_deploy(self.store, incident.deploy_id) if incident.deploy_id else None
        environment = deploy.environment if deploy else self.settings.environment
        context = ActionContext(
            incident=incident.id,
            version=deploy.version if deploy else None,
            previous_version=deploy.previous_version if deploy else None,
            deploy_id=deploy.id if deploy else None,
            environment=environment,
            commit=deploy.commit if deploy else None,
        )
        try:
            latest = self.store.latest_deploy(environment)
            if latest is not None and latest.finished_at is None:
                raise ActionRefused(
                    "deploy_in_progress",
                    f"deploy {latest.id} (version {latest.version}) is in progress in "
                    f"{environment}: wait for it to finish",
                )
            try:
                step.action.describe(context)
            except MissingValue as exc:
                raise ActionRefused(exc.guard, str(exc)) from None
        except ActionRefused as refused:
            self.timeline.refusal(incident.id, deploy, refused, "manual", by, now, step=name)
            raise
        done = run_step(
            self.store,
            step,
            context,
            trigger="manual",
            dry_run=dry_run,
            timeout_s=self.settings.timeout_s,
            by=by,
            at=now,
        )
        self.timeline.heard(done.event)
        return done

    def after_rollback(
        self,
        context: ActionContext,
        trigger: Trigger,
        by: str,
        dry_run: bool,
        at: float,
        events: list[TimelineEvent],
    ) -> list[StepResult]:
        """Run the ``after_rollback`` steps in order, one after the other finished; a step whose
        command names an unknown value is refused on the timeline and the next one runs."""
        results = []
        for step in self.steps.values():
            if not step.after_rollback:
                continue
            try:
                done = run_step(
                    self.store,
                    step,
                    context,
                    trigger=trigger,
                    dry_run=dry_run,
                    timeout_s=self.settings.timeout_s,
                    by=by,
                    at=at,
                )
            except MissingValue as exc:
                refused = ActionRefused(exc.guard, str(exc))
                events.append(
                    self.timeline.refusal(
                        context.incident, None, refused, trigger, by, at, step=step.name
                    )
                )
                continue
            self.timeline.heard(done.event)
            events.append(done.event)
            results.append(done)
            if done.result is not None:
                at += done.result.duration_s
        return results
