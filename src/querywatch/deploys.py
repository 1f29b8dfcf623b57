"""Deploy markers from CI/CD: the rules behind `querywatch deploy start|finish` and the API.

A regression means little on its own; lined up with the deploy before it, it names the version
and commit to look at. CI marks each deploy's start and finish, by this CLI or by the HTTP API
(`querywatch.web.api`); both go through :func:`start_deploy` and :func:`finish_deploy`, so the
rules (ids, previous version, what can be finished) live in one place.

A deploy that migrates the schema may leave the previous version unable to run, which makes a
rollback unsafe. CI can say so (``--migration``); and when the ``dsn`` setting names the database,
the CLI (:mod:`querywatch.cli.deploys`) snapshots its schema at start and finish
(:mod:`querywatch.schema`) and records an unsafe change on the marker. Snapshotting stays out of
:func:`start_deploy` and :func:`finish_deploy`, which only touch the store.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace
from typing import Any

from querywatch.config import DEFAULT_ENVIRONMENT, DEFAULT_STATEMENT_TIMEOUT_MS
from querywatch.errors import InvalidTransition, NotFound, QuerywatchError
from querywatch.records import DeployMarker
from querywatch.schema import SchemaDiff, SchemaSnapshot, SnapshotError, diff, snapshot
from querywatch.store.base import DEPLOY_STATE_PREFIXES, Store
from querywatch.timefmt import duration, utc_stamp

# Versions and ids: printable, no whitespace, so they survive a shell, a log line and a URL.
_WORD = re.compile(r"[^\s\x00-\x1f\x7f]{1,200}")
_ENVIRONMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_COMMIT = re.compile(r"[0-9a-f]{4,64}")
_MAX_AUTHOR = 200
_MAX_MIGRATION = 500


class InvalidDeploy(QuerywatchError):
    """A deploy field is malformed (empty version, a commit that is not hex…); says which."""

    error_code = "invalid_deploy"  # in a --json error envelope


def _word(value: str, what: str) -> str:
    value = value.strip()
    if not value:
        raise InvalidDeploy(f"{what} must not be empty")
    if value.startswith("-"):
        raise InvalidDeploy(
            f"{what} {value[:60]!r} must not start with '-': a rollback command would read it "
            "as an option"
        )
    if not _WORD.fullmatch(value):
        raise InvalidDeploy(
            f"{what} {value[:60]!r} must be at most 200 printable characters without spaces"
        )
    return value


def check_environment(environment: str) -> str:
    if not _ENVIRONMENT.fullmatch(environment):
        raise InvalidDeploy(
            f"environment {environment[:60]!r} must be 1-64 letters, digits, '.', '_' or '-'"
        )
    return environment


def _commit(commit: str | None) -> str | None:
    if commit is None or not commit.strip():
        return None
    value = commit.strip().lower()
    if not _COMMIT.fullmatch(value):
        raise InvalidDeploy(f"commit {commit[:70]!r} is not a hex commit id (4-64 of 0-9, a-f)")
    return value


def _author(author: str | None) -> str | None:
    if author is None or not author.strip():
        return None
    value = author.strip()
    if len(value) > _MAX_AUTHOR or not value.isprintable():
        raise InvalidDeploy(f"author must be one line of at most {_MAX_AUTHOR} characters")
    return value


def _migration(migration: str | None) -> str | None:
    if migration is None or not migration.strip():
        return None
    value = migration.strip()
    if len(value) > _MAX_MIGRATION or not value.isprintable():
        raise InvalidDeploy(
            f"migration must be one line of at most {_MAX_MIGRATION} characters saying what it "
            "changes"
        )
    return value


def find_deploy(store: Store, deploy_id: str) -> DeployMarker | None:
    """The marker with this id. Deploys are few (tens a day), so a scan is fine."""
    return next((d for d in store.deploys() if d.id == deploy_id), None)


def start_deploy(
    store: Store,
    version: str,
    *,
    commit: str | None = None,
    environment: str = DEFAULT_ENVIRONMENT,
    author: str | None = None,
    at: float | None = None,
    deploy_id: str | None = None,
    migration: str | None = None,
) -> DeployMarker:
    """Record that ``version`` started rolling out; the id defaults to ``env:version:epoch``.

    ``migration`` declares that the deploy changes the schema (free text: what it changes).
    A retried CI step (same id, same version) gets the marker already recorded instead of a
    second one (a migration it did not declare yet is added); the same id for another version is
    an error.
    """
    version = _word(version, "version")
    environment = check_environment(environment)
    commit, author, migration = _commit(commit), _author(author), _migration(migration)
    at = time.time() if at is None else at
    marker_id = (
        _word(deploy_id, "deploy id")
        if deploy_id is not None
        else f"{environment}:{version}:{int(at)}"
    )
    existing = find_deploy(store, marker_id)
    if existing is not None:
        if (existing.version, existing.environment) == (version, environment) and commit in (
            None,
            existing.commit,
        ):
            if migration is not None and existing.migration is None:
                existing = replace(existing, migration=migration)
                store.record_deploy(existing)
            return existing
        raise InvalidTransition(
            f"deploy id {marker_id} is already used by version {existing.version} "
            f"in {existing.environment}"
        )
    previous = store.latest_deploy(environment)
    if previous is not None and previous.started_at > at:  # backfilling an older deploy
        earlier = store.deploys(until=at, environment=environment)
        previous = earlier[-1] if earlier else None
    marker = DeployMarker(
        id=marker_id,
        version=version,
        commit=commit,
        environment=environment,
        started_at=at,
        author=author,
        previous_version=previous.version if previous is not None else None,
        migration=migration,
    )
    store.record_deploy(marker)
    return marker


def finish_deploy(
    store: Store,
    version: str | None = None,
    *,
    deploy_id: str | None = None,
    environment: str = DEFAULT_ENVIRONMENT,
    at: float | None = None,
) -> DeployMarker:
    """Mark a deploy finished: the one with ``deploy_id``, else the latest unfinished deploy of
    ``version`` in ``environment`` (the environment is ignored when an id is given).

    Raises :class:`NotFound` when there is nothing to finish and :class:`InvalidTransition` when
    it is already finished, so a CI step that finishes the wrong thing fails loudly.
    """
    at = time.time() if at is None else at
    if deploy_id is not None:
        deploy_id = _word(deploy_id, "deploy id")
        marker = find_deploy(store, deploy_id)
        if marker is None:
            raise NotFound(f"no deploy with id {deploy_id}")
        if version is not None and marker.version != version.strip():
            raise InvalidDeploy(
                f"deploy {deploy_id} is version {marker.version}, not {version.strip()}"
            )
    elif version is not None:
        version = _word(version, "version")
        environment = check_environment(environment)
        candidates = [d for d in store.deploys(environment=environment) if d.version == version]
        unfinished = [d for d in candidates if d.finished_at is None]
        if not candidates:
            raise NotFound(f"no deploy of version {version} in {environment} to finish")
        marker = (unfinished or candidates)[-1]
    else:
        raise InvalidDeploy("say which deploy to finish: give its version or its id")
    if marker.finished_at is not None:
        raise InvalidTransition(
            f"deploy {marker.id} (version {marker.version} in {marker.environment}) "
            f"already finished at {utc_stamp(marker.finished_at)}"
        )
    if at < marker.started_at:
        raise InvalidDeploy(
            f"deploy {marker.id} cannot finish at {utc_stamp(at)}, before it started "
            f"({utc_stamp(marker.started_at)})"
        )
    finished = replace(marker, finished_at=at)
    store.record_deploy(finished)
    return finished


def marker_to_json(marker: DeployMarker) -> dict[str, Any]:
    """One deploy as the API and `--json` show it (times in epoch seconds, like `top`)."""
    return {
        "id": marker.id,
        "version": marker.version,
        "commit": marker.commit,
        "environment": marker.environment,
        "started_at": marker.started_at,
        "finished_at": marker.finished_at,
        "duration_s": (
            None if marker.finished_at is None else round(marker.finished_at - marker.started_at, 3)
        ),
        "author": marker.author,
        "previous_version": marker.previous_version,
        "rollback": marker.rollback,
        "migration": marker.migration,
        "schema_change": marker.schema_change,
    }


def describe(marker: DeployMarker) -> str:
    """The one line a CI log shows for a marker, saying when a rollback of it would be unsafe."""
    commit = f" ({marker.commit[:12]})" if marker.commit else ""
    what = f"version {marker.version}{commit} in {marker.environment}"
    if marker.finished_at is None:
        line = f"deploy {marker.id} started: {what}"
    else:
        took = duration(marker.finished_at - marker.started_at)
        line = f"deploy {marker.id} finished: {what} after {took}"
    notes = []
    if marker.migration:
        notes.append(f"declared migration: {marker.migration}")
    if marker.schema_change:
        notes.append(f"schema change: {marker.schema_change}")
    return f"{line}; rollback unsafe: {'; '.join(notes)}" if notes else line


# -- schema snapshots -----------------------------------------------------------------------------


def schema_state_key(deploy_id: str) -> str:
    """The store state key holding the schema snapshot taken when the deploy started."""
    return f"{DEPLOY_STATE_PREFIXES[0]}{deploy_id}"


def record_start_schema(
    store: Store,
    marker: DeployMarker,
    location: str,
    *,
    statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS,
) -> SchemaSnapshot:
    """Snapshot the schema at ``location`` as it is before ``marker``'s deploy changes it.

    A retried start keeps the first snapshot: a later one may already include the migration.
    """
    key = schema_state_key(marker.id)
    kept = store.get_state(key)
    if kept is not None:
        return SchemaSnapshot.from_json(kept)
    taken = snapshot(location, statement_timeout_ms=statement_timeout_ms)
    store.set_state(key, taken.to_json())
    return taken


def check_finish_schema(
    store: Store,
    marker: DeployMarker,
    location: str,
    *,
    statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS,
) -> tuple[DeployMarker, SchemaDiff]:
    """Compare the schema now with the one kept at start; record an unsafe change on the marker.

    Raises :class:`SnapshotError` when there is no start snapshot to compare with, or it is of
    another database; :class:`~querywatch.errors.DatabaseUnavailable` when it cannot be read.
    """
    kept = store.get_state(schema_state_key(marker.id))
    if kept is None:
        raise SnapshotError(
            f"no schema snapshot from the start of deploy {marker.id} (set the dsn for "
            "`deploy start` too)"
        )
    before = SchemaSnapshot.from_json(kept)
    after = snapshot(location, statement_timeout_ms=statement_timeout_ms)
    if (before.dialect, before.database) != (after.dialect, after.database):
        raise SnapshotError(
            f"deploy {marker.id} started on database {before.database} and finished on "
            f"{after.database}: the schemas cannot be compared"
        )
    changes = diff(before, after)
    reason = changes.unsafe_reason()
    if reason is not None and reason != marker.schema_change:
        marker = replace(marker, schema_change=reason)
        store.record_deploy(marker)
    return marker, changes
