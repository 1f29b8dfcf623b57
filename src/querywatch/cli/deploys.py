"""`querywatch deploy start|finish` (CI marks a deploy) and `querywatch deploys` (the list).

The rules live in :mod:`querywatch.deploys`; these commands add the schema snapshots when the
``dsn`` setting names the database. A failed snapshot only warns: it never fails the CI step.
"""

from __future__ import annotations

import click

from querywatch.cli.context import (
    Context,
    emit_json,
    open_configured_store,
    opened_store,
    time_range,
)
from querywatch.cli.options import (
    dsn_option,
    env_option,
    json_option,
    store_option,
    time_range_options,
)
from querywatch.deploys import (
    InvalidDeploy,
    check_environment,
    check_finish_schema,
    describe,
    finish_deploy,
    marker_to_json,
    record_start_schema,
    start_deploy,
)
from querywatch.dsn import redact
from querywatch.errors import QuerywatchError
from querywatch.records import DeployMarker
from querywatch.schema import SchemaDiff
from querywatch.terminal import one_line
from querywatch.timefmt import utc_stamp

_dsn_option = dsn_option(
    "Database whose schema is compared between start and finish, to catch a migration "
    "unsafe to roll back."
)
_json_option = json_option("the marker")


def _warn(message: str) -> None:
    click.echo(f"querywatch: warning: {one_line(redact(message))}", err=True)


def _failure(exc: Exception) -> str:
    # Any failure, not only ours: the deploy is recorded, and CI must not fail on a snapshot.
    return str(exc) if isinstance(exc, QuerywatchError) else f"{type(exc).__name__}: {exc}"


def _show(marker: DeployMarker, as_json: bool) -> None:
    if as_json:
        emit_json(marker_to_json(marker))
    else:
        click.echo(one_line(describe(marker)))


@click.group()
def deploy() -> None:
    """Mark a deploy's start and finish (CI/CD calls this), so regressions name the deploy."""


@deploy.command("start")
@click.option("--version", "version", required=True, help="The version being deployed.")
@click.option("--commit", help="The commit id being deployed (hex, short or full).")
@env_option("Environment deployed to.")
@click.option("--author", help="Who or what deployed (e.g. the CI actor).")
@click.option("--id", "deploy_id", help="Your own deploy id [default: ENV:VERSION:EPOCH].")
@click.option(
    "--migration",
    metavar="TEXT",
    help="The deploy carries a schema migration: what it changes (makes a rollback unsafe).",
)
@_dsn_option
@store_option
@_json_option
@click.pass_obj
def start_cmd(
    obj: Context,
    version: str,
    commit: str | None,
    environment: str | None,
    author: str | None,
    deploy_id: str | None,
    migration: str | None,
    dsn: str | None,
    store: str | None,
    as_json: bool,
) -> None:
    """Record that a deploy started; prints its id for `deploy finish --id`."""
    cfg = obj.config(store=store, environment=environment, dsn=dsn)
    with opened_store(cfg, create=True) as the_store:
        marker = start_deploy(
            the_store,
            version,
            commit=commit,
            environment=cfg["environment"],
            author=author,
            deploy_id=deploy_id,
            migration=migration,
        )
        if cfg["dsn"]:
            try:
                record_start_schema(
                    the_store,
                    marker,
                    cfg["dsn"],
                    statement_timeout_ms=cfg["statement_timeout_ms"],
                )
            except Exception as exc:
                _warn(f"no schema snapshot, schema changes will not be checked: {_failure(exc)}")
    _show(marker, as_json)


@deploy.command("finish")
@click.option("--version", "version", help="Finish the latest unfinished deploy of this version.")
@env_option("Environment deployed to.")
@click.option("--id", "deploy_id", help="Finish the deploy with this id instead.")
@_dsn_option
@store_option
@_json_option
@click.pass_obj
def finish_cmd(
    obj: Context,
    version: str | None,
    environment: str | None,
    deploy_id: str | None,
    dsn: str | None,
    store: str | None,
    as_json: bool,
) -> None:
    """Record that a deploy finished (give --version or --id); report the schema changes seen."""
    if version is None and deploy_id is None:
        raise InvalidDeploy("say which deploy to finish: pass --version or --id")
    cfg = obj.config(store=store, environment=environment, dsn=dsn)
    changes: SchemaDiff | None = None
    the_store = open_configured_store(cfg, create=False)
    try:
        marker = finish_deploy(
            the_store, version, deploy_id=deploy_id, environment=cfg["environment"]
        )
        if cfg["dsn"]:
            try:
                marker, changes = check_finish_schema(
                    the_store,
                    marker,
                    cfg["dsn"],
                    statement_timeout_ms=cfg["statement_timeout_ms"],
                )
            except Exception as exc:
                _warn(f"schema changes of deploy {marker.id} not checked: {_failure(exc)}")
    finally:
        the_store.close()
    _show(marker, as_json)
    if changes is not None:  # with --json, stdout stays one envelope: the changes go to stderr
        for line in changes.lines() or ["schema unchanged"]:
            click.echo(f"  schema: {one_line(line)}", err=as_json)


@click.command("deploys")
@click.option("--env", "--environment", "environment", help="Only this environment [default: all].")
@time_range_options
@store_option
@json_option("the markers as a list")
@click.pass_obj
def deploys_cmd(
    obj: Context,
    environment: str | None,
    since: str | None,
    until: str | None,
    store: str | None,
    as_json: bool,
) -> None:
    """Deploy markers in start order, oldest first."""
    cfg = obj.config(store=store)
    since_ts, until_ts, _ = time_range(since, until)
    if environment is not None:
        check_environment(environment)
    with opened_store(cfg, read_only=True) as the_store:
        markers = the_store.deploys(since=since_ts, until=until_ts, environment=environment)
    if as_json:
        emit_json([marker_to_json(m) for m in markers])
        return
    if not markers:
        click.echo("no deploys recorded in that range")
    for m in markers:
        # Versions, commits and ids come from CI: shown literally, control characters escaped.
        finished = utc_stamp(m.finished_at) if m.finished_at is not None else "unfinished"
        commit = one_line(m.commit or "-")[:12]
        click.echo(
            f"{utc_stamp(m.started_at)}  {finished:<25}  {one_line(m.environment):<12} "
            f"{one_line(m.version):<16} {commit:<12}  {one_line(m.id)}"
        )
