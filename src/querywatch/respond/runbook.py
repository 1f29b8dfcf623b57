"""Runbook steps: named commands such as the report's "database cache flush".

A step is configured once, in the config file, and run the same way every time: after a
rollback (``after_rollback = true``) or on demand (``querywatch runbook run NAME --incident ID``),
under the responder's guards, with its outcome on the incident timeline::

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

from querywatch.errors import ConfigError
from querywatch.incidents import service
from querywatch.incidents.model import TimelineEvent
from querywatch.respond.actions import Action, ActionContext, ActionOutcome, CommandAction
from querywatch.respond.guards import Trigger, event_data
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

    The guards that decide whether it may run at all are the caller's
    (:meth:`querywatch.respond.rollback.Responder.run_step`); this runs and records.
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
