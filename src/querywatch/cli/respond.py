"""`querywatch rollback ID` and `querywatch runbook [run NAME --incident ID]`.

Settings are resolved for the environment of the incident's deploy, so ``[environments.staging]``
overrides apply to a staging incident whatever the default environment is. Each step prints as it
goes on the timeline; a refusal or a failed action is one line on stderr and exit code 1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import click

from querywatch.cli.context import Context, emit_json, login, open_configured_store
from querywatch.cli.options import by_option, json_option, store_option
from querywatch.deploys import find_deploy
from querywatch.errors import QuerywatchError
from querywatch.incidents import service
from querywatch.incidents.model import TimelineEvent
from querywatch.respond.notifier import Notifier
from querywatch.respond.responder import Responder, responder_from_config
from querywatch.respond.runbook import runbook_from_config
from querywatch.respond.sinks import TerminalSink
from querywatch.store.base import Store
from querywatch.terminal import one_line
from querywatch.timefmt import clock

_by_option = by_option("Who asked")
_dry_run_option = click.option(
    "--dry-run/--no-dry-run",
    "dry_run",
    default=None,
    help="Record what would run and run nothing [default: the rollback_dry_run setting].",
)


class ActionFailed(QuerywatchError):
    """The rollback or step ran and failed (or timed out); its output is on the timeline."""

    error_code = "action_failed"


def _print_event(event: TimelineEvent) -> None:
    if event.data.get("action") in ("refused", "freeze"):
        return  # said once, as the error line
    click.echo(f"{clock(event.at)} {one_line(event.message)}")
    output = event.data.get("output")
    if output and event.data.get("action") in ("rollback", "runbook"):
        for line in str(output).splitlines()[-10:]:
            click.echo(f"    {one_line(line)}")


def _quiet_notifier(cfg: Mapping[str, Any]) -> Notifier:
    """The configured alert sinks without the terminal one: stderr is for the error line."""
    from querywatch.respond.setup import notifier_from_config

    full = notifier_from_config(cfg)
    return Notifier(
        [s for s in full.sinks if not isinstance(s, TerminalSink)],
        renotify_s=full.renotify_s,
        base_url=full.base_url,
    )


class _Opened:
    """The store and a responder configured for the incident's environment."""

    def __init__(
        self,
        obj: Context,
        store: str | None,
        incident_id: str | None,
        *,
        on_event: Callable[[TimelineEvent], None] | None = _print_event,
    ) -> None:
        cfg = obj.config(store=store)
        self.store: Store = open_configured_store(cfg, create=False)
        try:
            if incident_id is not None:
                incident = service.get_incident(self.store, incident_id)
                deploy = find_deploy(self.store, incident.deploy_id) if incident.deploy_id else None
                if deploy is not None and deploy.environment != cfg["environment"]:
                    cfg = obj.config(store=store, environment=deploy.environment)
            self.responder: Responder = responder_from_config(
                cfg, self.store, _quiet_notifier(cfg), on_event=on_event
            )
        except BaseException:
            self.store.close()
            raise

    def __enter__(self) -> _Opened:
        return self

    def __exit__(self, *exc: object) -> None:
        self.store.close()


@click.command("rollback")
@click.argument("incident_id", metavar="INCIDENT")
@_dry_run_option
@click.option(
    "--force-unsafe-migration",
    is_flag=True,
    help="Roll back although the deploy carried a schema migration (you checked it is safe).",
)
@_by_option
@store_option
@json_option("the outcome")
@click.pass_obj
def rollback(
    obj: Context,
    incident_id: str,
    dry_run: bool | None,
    force_unsafe_migration: bool,
    by: str | None,
    store: str | None,
    as_json: bool,
) -> None:
    """Roll back the deploy an incident blames, through every guard (see docs/respond.md)."""
    with _Opened(obj, store, incident_id, on_event=None if as_json else _print_event) as opened:
        result = opened.responder.rollback(
            incident_id,
            by=by or login(),
            dry_run=dry_run,
            force_unsafe_migration=force_unsafe_migration,
        )
    if result.outcome in ("failed", "timeout"):
        error = result.result.error if result.result is not None else result.outcome
        raise ActionFailed(f"rollback {result.outcome}: {error}")
    if as_json:
        emit_json(result.to_dict())
    elif result.outcome == "ok":
        click.echo(
            f"{incident_id}: rolled back {result.version} → {result.target_version}; "
            "recovery is verified by the running agent (querywatch watch)"
        )
    elif result.outcome == "dry_run":
        click.echo(f"{incident_id}: dry run, nothing was run")


@click.group("runbook", invoke_without_command=True)
@store_option
@json_option("the steps as a list")
@click.pass_context
def runbook(ctx: click.Context, store: str | None, as_json: bool) -> None:
    """List the configured runbook steps ([runbook.<name>] tables of querywatch.toml)."""
    if ctx.invoked_subcommand is not None:
        return
    cfg = ctx.ensure_object(Context).config(store=store)
    steps = runbook_from_config(cfg)
    if as_json:
        rows = [
            {
                "name": s.name,
                "command": s.command,
                "after_rollback": s.after_rollback,
                "timeout_s": s.timeout_s,
                "description": s.description,
            }
            for s in steps.values()
        ]
        emit_json(rows)
        return
    if not steps:
        click.echo("no runbook steps: add [runbook.<name>] tables to querywatch.toml")
        return
    for s in steps.values():
        when = "after rollback" if s.after_rollback else "on demand"
        timeout = f"{s.timeout_s:g} s" if s.timeout_s is not None else "default timeout"
        click.echo(f"{one_line(s.name):<20} {when:<15} {timeout:<16} {one_line(s.command)}")
        if s.description:
            click.echo(f"{'':<20} {one_line(s.description)}")


@runbook.command("run")
@click.argument("name")
@click.option("--incident", "incident_id", required=True, help="The incident it is run for.")
@_dry_run_option
@_by_option
@store_option
@click.pass_obj
def run(
    obj: Context,
    name: str,
    incident_id: str,
    dry_run: bool | None,
    by: str | None,
    store: str | None,
) -> None:
    """Run one runbook step for an incident; it goes on the incident's timeline."""
    with _Opened(obj, store, incident_id) as opened:
        done = opened.responder.run_step(name, incident_id, by=by or login(), dry_run=dry_run)
    if done.outcome in ("failed", "timeout"):
        error = done.result.error if done.result is not None else done.outcome
        raise ActionFailed(f"runbook step {name} {done.outcome}: {error}")
