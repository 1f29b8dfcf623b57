"""`querywatch canary start|status|step|watch|promote|abort`: a progressive rollout from the CLI.

The driver is :mod:`querywatch.respond.canary`; its state is in the store, so CI can start a
rollout in one job, a ``canary watch`` loop (or ``canary step`` from a scheduler) moves it on, and
a person promotes or aborts it from a laptop. Exit codes: 0 done (``watch``: promoted); 1 a
domain error, a weight or promote action that failed, or (``watch``) a canary that was aborted;
2 a usage error.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

import click

from querywatch.cli.context import Context, emit_json, login, open_configured_store
from querywatch.cli.options import (
    Decorator,
    FiniteFloat,
    by_option,
    env_option,
    json_option,
    setting_help,
)
from querywatch.config import Config
from querywatch.errors import QuerywatchError
from querywatch.respond.canary import CanaryRollout, StepOutcome, canary_rollout_from_config
from querywatch.respond.canary_judge import judge, resolve, verdict_json
from querywatch.respond.canary_settings import parse_steps
from querywatch.respond.canary_state import Rollout, RolloutEvent
from querywatch.store.base import Store
from querywatch.terminal import one_line
from querywatch.timefmt import clock

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_EVERY_S = 10.0


class CanaryAborted(QuerywatchError):
    """``canary watch`` ended with the canary aborted (the reason is the message)."""

    error_code = "canary_aborted"


def _common(what: str) -> Callable[[F], F]:
    """--env, --store and --json, shared by every subcommand."""
    store: Decorator = click.option(
        "--store", help=setting_help("store", "Store path or PostgreSQL URL.")
    )
    env: Decorator = env_option("Environment whose canary this is.")
    as_json: Decorator = json_option(what)

    def wrap(f: F) -> F:
        return cast(F, as_json(store(env(f))))

    return wrap


class _Opened:
    """The store and the environment's rollout, with its responder for the rollback."""

    def __init__(self, obj: Context, store: str | None, environment: str | None, **flags: Any):
        from querywatch.cli.respond import _quiet_notifier
        from querywatch.respond.responder import responder_from_config

        self.cfg: Config = obj.config(store=store, environment=environment, **flags)
        self.store: Store = open_configured_store(self.cfg, create=False)
        try:
            responder = responder_from_config(self.cfg, self.store, _quiet_notifier(self.cfg))
            self.rollout: CanaryRollout = canary_rollout_from_config(
                self.cfg, self.store, responder
            )
        except BaseException:
            self.store.close()
            raise

    def __enter__(self) -> _Opened:
        return self

    def __exit__(self, *exc: object) -> None:
        self.store.close()


@click.group("canary")
def canary() -> None:
    """Roll a canary release out in steps, judged per query against the stable one
    (docs/canary.md)."""


@canary.command("start")
@click.option("--release", required=True, help="The canary release (what QUERYWATCH_RELEASE says).")
@click.option("--stable", required=True, help="The stable release it is judged against.")
@click.option("--steps", help=setting_help("canary_steps"))
@click.option("--deploy", "deploy_id", help="Its deploy marker (default: the latest of --release).")
@by_option("Who starts it")
@_common("the rollout")
@click.pass_obj
def start(
    obj: Context,
    release: str,
    stable: str,
    steps: str | None,
    deploy_id: str | None,
    by: str | None,
    environment: str | None,
    store: str | None,
    as_json: bool,
) -> None:
    """Start a rollout: the canary takes the first step's share of traffic."""
    with _Opened(obj, store, environment, canary_steps=steps) as opened:
        plan = parse_steps(str(opened.cfg["canary_steps"]))
        done = opened.rollout.start(
            release, stable, by=by or login(), deploy_id=deploy_id, steps=plan
        )
    if as_json:
        emit_json(done.to_json())
        return
    _print_events(done.events)
    click.echo(
        f"canary {release} started next to {stable} in {done.environment} at {done.weight:g}% "
        f"(steps {', '.join(f'{s:g}' for s in done.steps)}%); move it on with querywatch canary "
        "watch"
    )


@canary.command("status")
@click.option(
    "--judge",
    "judge_now",
    is_flag=True,
    help="Also run the analysis now (read-only: nothing is recorded or acted on).",
)
@_common("the rollout (and the verdict with --judge)")
@click.pass_obj
def status(
    obj: Context, judge_now: bool, environment: str | None, store: str | None, as_json: bool
) -> None:
    """Show the environment's rollout: releases, weight, verdicts, actions, how it ended."""
    with _Opened(obj, store, environment) as opened:
        current = opened.rollout.status()
        verdict = None
        if judge_now and current is not None:
            target = resolve(
                opened.store,
                opened.rollout.environment,
                canary=None,
                stable=None,
                since=None,
                until=None,
                now=time.time(),
            )
            verdict = verdict_json(target, judge(opened.store, target))
        env = opened.rollout.environment
    if as_json:
        emit_json({"rollout": None if current is None else current.to_json(), "verdict": verdict})
        return
    if current is None:
        click.echo(f"no canary rollout in {env}")
        return
    _print_rollout(current)
    if verdict is not None:
        click.echo(f"verdict now: {verdict['verdict']}: {one_line(verdict['reason'])}")


@canary.command("step")
@_common("what the step judged and did")
@click.pass_obj
def step(obj: Context, environment: str | None, store: str | None, as_json: bool) -> None:
    """Judge the canary once and act: hold, move to the next weight, promote or abort."""
    with _Opened(obj, store, environment) as opened:
        done = opened.rollout.step()
    if as_json:
        emit_json(done.to_dict())
    else:
        _print_step(done)


@canary.command("watch")
@click.option(
    "--every",
    type=FiniteFloat(min=0.1),
    default=DEFAULT_EVERY_S,
    show_default=True,
    help="Seconds between analyses.",
)
@_common("the last step")
@click.pass_obj
def watch(
    obj: Context, every: float, environment: str | None, store: str | None, as_json: bool
) -> None:
    """Step the canary until it is promoted (exit 0) or aborted (exit 1).

    A rollout that has already ended is reported at once, with the same exit code."""
    with _Opened(obj, store, environment) as opened:
        current = opened.rollout.status()
        if current is not None and not current.running:
            ended: Rollout = current
            data: dict[str, Any] = {"did": None, "verdict": None, "rollout": current.to_json()}
            if not as_json:
                _print_rollout(current)
        else:
            while True:
                done = opened.rollout.step()
                if not as_json:
                    _print_step(done)
                if not done.rollout.running:
                    break
                time.sleep(every)
            ended, data = done.rollout, done.to_dict()
    if ended.status == "aborted":
        raise CanaryAborted(f"canary {ended.canary_release} aborted: {ended.end_reason}")
    if as_json:
        emit_json(data)


@canary.command("promote")
@by_option("Who promotes it")
@_common("the rollout")
@click.pass_obj
def promote(
    obj: Context, by: str | None, environment: str | None, store: str | None, as_json: bool
) -> None:
    """Promote the canary to every user now, through canary_promote_command (or webhook)."""
    with _Opened(obj, store, environment) as opened:
        done = opened.rollout.promote(by=by or login())
    if as_json:
        emit_json(done.to_json())
        return
    _print_events(done.events[-1:])
    click.echo(f"canary {done.canary_release} promoted in {done.environment}")


@canary.command("abort")
@click.option("--reason", help="Why, for the record (default: aborted by <who>).")
@by_option("Who aborts it")
@_common("the rollout")
@click.pass_obj
def abort(
    obj: Context,
    reason: str | None,
    by: str | None,
    environment: str | None,
    store: str | None,
    as_json: bool,
) -> None:
    """Abort the canary: weight 0 at once, then the configured rollback (docs/canary.md)."""
    with _Opened(obj, store, environment) as opened:
        current = opened.rollout.status()
        before = len(current.events) if current is not None else 0
        done = opened.rollout.abort(by=by or login(), reason=reason)
    if as_json:
        emit_json(done.to_json())
        return
    _print_events(done.events[before:])
    click.echo(f"canary {done.canary_release} aborted in {done.environment}")


def _print_events(events: list[RolloutEvent]) -> None:
    for event in events:
        click.echo(f"{clock(event.at)} {one_line(event.message)}")
        if event.output and event.outcome not in ("ok", "dry_run"):
            for line in event.output.splitlines()[-10:]:
                click.echo(f"    {one_line(line)}")


def _print_step(done: StepOutcome) -> None:
    r, v = done.rollout, done.verdict
    click.echo(
        f"{clock(v.until)} {v.status}: {one_line(v.reason)} -> {done.did} "
        f"({r.canary_release} at {r.weight:g}%, {r.status})"
    )


def _print_rollout(r: Rollout) -> None:
    ended = {
        "aborted": f", aborted at {clock(r.aborted_at)}" if r.aborted_at else "",
        "promoted": f", promoted at {clock(r.promoted_at)}" if r.promoted_at else "",
    }.get(r.status, "")
    click.echo(
        f"canary {r.canary_release} next to {r.stable_release} in {r.environment}: {r.status}"
        f"{ended}; weight {r.weight:g}% (step {r.step + 1} of {len(r.steps)}: "
        f"{', '.join(f'{s:g}' for s in r.steps)}%), started {clock(r.started_at)}"
        + (f" by {r.started_by}" if r.started_by else "")
    )
    if r.end_reason:
        click.echo(f"  why: {one_line(r.end_reason)}")
    if r.incident:
        click.echo(f"  incident: {r.incident}")
    last = r.last_verdict
    if last is not None:
        click.echo(
            f"  last verdict at {clock(last.at)} ({len(r.verdicts)} so far): {last.status}: "
            f"{one_line(last.reason)}"
        )
    for event in r.events[-5:]:
        click.echo(f"  {clock(event.at)} {event.action} {event.outcome}: {one_line(event.message)}")
