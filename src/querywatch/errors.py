"""The one exception tree. The CLI turns any of these into a single line for the user.

QuerywatchError
 ├── ConfigError          a setting or config file is wrong (carries the file / setting name)
 ├── SourceError          a source of statistics cannot be read
 │    ├── DatabaseUnavailable   cannot connect, or the connection dropped
 │    └── ExtensionMissing      pg_stat_statements is not installed / not preloaded
 ├── StoreError           the querywatch store cannot be opened or written
 ├── NotFound             a thing asked for by id (an incident) does not exist
 └── InvalidTransition    an incident cannot make that change from its status (resolve twice…)
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
