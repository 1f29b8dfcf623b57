"""Where querywatch's exceptions start; the CLI turns any of them into one line for the user.

The general ones live here:

QuerywatchError
 ├── ConfigError          a setting or config file is wrong (carries the file / setting name)
 ├── SourceError          a source of statistics cannot be read
 │    ├── DatabaseUnavailable   cannot connect, or the connection dropped
 │    └── ExtensionMissing      pg_stat_statements is not installed / not preloaded
 ├── StoreError           the querywatch store cannot be opened or written
 ├── NotFound             a thing asked for by id (an incident) does not exist
 ├── InvalidTransition    an incident cannot make that change from its status (resolve twice…)
 └── CouldNotCheck        lint, explain or the CI gate could not check as asked (exit code 2)

Errors that belong to one feature live beside it (all subclass QuerywatchError, directly or
through the class named in brackets; tests/test_errors_tree.py keeps this list complete):

 querywatch.schema                      SnapshotError   a stored schema snapshot cannot be read back
 querywatch.deploys                     InvalidDeploy   a deploy field is malformed
 querywatch.sql.lint                    LintParseError  a statement does not parse (strict lint)
 querywatch.sql.source_scan             LintPathError   a path to lint cannot be read
 querywatch.plans.explain               ExplainError    a statement cannot be EXPLAINed
 querywatch.logs.model                  LogFormatError  [SourceError] a log cannot be read as asked
 querywatch.gate.runfile                GateInputError  the gate cannot read what it checks
 querywatch.incidents.postmortem_render PostmortemError a postmortem cannot be written
 querywatch.respond.guards              ActionRefused   [InvalidTransition] a guard said no
 querywatch.respond.guards              RollbackRefused [ActionRefused] rollback refused
 querywatch.respond.actions             MissingValue    a template names a value the incident lacks
 querywatch.respond.actions             UnsafeValue     [MissingValue] a value starts with '-'
 querywatch.respond.sinks               SinkError       an alert sink cannot deliver
 querywatch.cli.respond                 ActionFailed    a rollback or runbook step failed
 querywatch.respond.canary              CanaryActionFailed a canary weight or promote action failed
 querywatch.web.canary                  BadCanaryRequest a canary endpoint parameter is unusable
 querywatch.cli.canary                  CanaryAborted   `canary watch` ended with the canary aborted
 querywatch.demo.deployer               DeployError     the demo's new release did not get healthy
"""

from __future__ import annotations


class QuerywatchError(Exception):
    """Base of every error querywatch raises on purpose; its message is meant for the user."""


class ConfigError(QuerywatchError):
    def __init__(self, message: str, *, source: str | None = None, setting: str | None = None):
        self.source = source
        self.setting = setting
        prefix = f"{source}: " if source else ""
        super().__init__(prefix + message)


class SourceError(QuerywatchError):
    pass


class DatabaseUnavailable(SourceError):
    pass


class ExtensionMissing(SourceError):
    pass


class StoreError(QuerywatchError):
    pass


class NotFound(QuerywatchError):
    """Something named by the user (e.g. an incident id) is not in the store."""


class InvalidTransition(QuerywatchError):
    """A lifecycle change that the incident's current status forbids; says what is allowed."""


class CouldNotCheck(QuerywatchError):
    """A check (lint, explain, the CI gate) could not run as asked: bad input, no database.

    Its own exit code, so CI tells "could not check" (2) from "checked and found problems" (1).
    """

    exit_code = 2
