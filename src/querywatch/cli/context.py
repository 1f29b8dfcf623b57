"""What every command shares: the settings context, JSON output, and the one way out on error.

A command raises a domain error (:class:`~querywatch.errors.QuerywatchError`); :func:`exit_on`
in :mod:`querywatch.cli.app` turns it into one line on stderr (and, under ``--json``, an error
envelope on stdout) and its exit code: 2 for :class:`~querywatch.errors.CouldNotCheck`, 1 for
any other. Commands never print errors or call ``sys.exit`` for them themselves.
"""

from __future__ import annotations

import contextlib
import getpass
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.text import Text

from querywatch.config import Config, load_config
from querywatch.dsn import redact
from querywatch.envelope import dumps, failure, success
from querywatch.errors import CouldNotCheck, QuerywatchError
from querywatch.store.base import Retention, Store
from querywatch.terminal import safe_text
from querywatch.timespec import parse_time

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


class Context:
    """``ctx.obj`` of every command: global flags, and whether the output is JSON."""

    def __init__(self, debug: bool = False, config_file: Path | None = None) -> None:
        self.debug = debug
        self.config_file = config_file
        self.json = False  # set by --json as it is parsed, so errors come out as an envelope

    def config(self, **flags: Any) -> Config:
        return load_config(flags, config_file=self.config_file)


def fail(message: str, code: int = 1, *, error: str = "error", as_json: bool = False) -> NoReturn:
    """One red line on stderr (and the error envelope on stdout under ``--json``), then exit."""
    if as_json:
        click.echo(dumps(failure(error, message)))
    err_console.print(
        Text.assemble(("querywatch: error:", "bold red"), " ", safe_text(redact(message))),
        soft_wrap=True,
    )
    sys.exit(code)


def emit_json(data: Any) -> None:
    """Every ``--json`` output: one success envelope on stdout (docs/json.md)."""
    click.echo(dumps(success(data)))


@contextlib.contextmanager
def could_not_check() -> Iterator[None]:
    """Inside a check (lint, explain, check), any domain error means "could not check"."""
    try:
        yield
    except CouldNotCheck:
        raise
    except QuerywatchError as exc:
        raise CouldNotCheck(str(exc)) from exc


def time_range(since: str | None, until: str | None) -> tuple[float | None, float | None, float]:
    """``--since``/``--until`` as epoch seconds (``None`` when not given), and the ``now`` used."""
    now = time.time()
    since_ts = parse_time(since, now=now, option="--since") if since else None
    until_ts = parse_time(until, now=now, option="--until") if until else None
    return since_ts, until_ts, now


def open_configured_store(
    cfg: Config, *, create: bool = True, read_only: bool = False, cache_kib: int | None = None
) -> Store:
    """The store the settings name; ``create=False``: a missing SQLite file is an error."""
    from querywatch.store import open_store

    return open_store(str(cfg["store"]), create=create, read_only=read_only, cache_kib=cache_kib)


@contextlib.contextmanager
def opened_store(cfg: Config, *, create: bool = False, read_only: bool = False) -> Iterator[Store]:
    """Open the store for one command and always close it."""
    the_store = open_configured_store(cfg, create=create, read_only=read_only)
    try:
        yield the_store
    finally:
        the_store.close()


def retention_of(cfg: Config) -> Retention:
    return Retention(
        raw_seconds=cfg["retention_raw_hours"] * 3600,
        minute_seconds=cfg["retention_minute_days"] * 86400,
    )


def login() -> str | None:
    """Who runs the command, for ``--by`` defaults."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no USER and no passwd entry (some containers)
        return None
