"""`querywatch digest`: the slow-query report from PostgreSQL and MySQL logs.

It wires files → parser → digest → report; the reading and the aggregation are
:mod:`querywatch.logs`, the terminal report :mod:`querywatch.cli.digest_view`. With ``--store``
the statements also land in the store as windows (so `top`, detection and the dashboard see
them, with the slowest auto_explain plan of the top fingerprints as plan evidence) and the
store's deploy markers split the report before/after each deploy; ``--follow``
keeps reading as the log grows and runs the agent over it, as `watch` does over
pg_stat_statements.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from querywatch.cli.context import Context, emit_json, err_console, open_configured_store
from querywatch.cli.options import FiniteFloat, dsn_option, json_option, setting_help
from querywatch.config import Config
from querywatch.errors import ConfigError
from querywatch.logs.formats import NAMES
from querywatch.logs.model import ParseOptions
from querywatch.logs.report import utc_text
from querywatch.terminal import safe_text

if TYPE_CHECKING:
    from collections.abc import Callable

    from querywatch.logs.digest import Digest
    from querywatch.logs.scan import FileReport, Plan
    from querywatch.store.base import Store

SORTS = ("total", "calls", "mean", "max", "errors")


@click.command("digest")
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", *NAMES]),
    default="auto",
    show_default=True,
    help="The log format; auto tells it from each file's first lines.",
)
@click.option(
    "--prefix",
    metavar="PREFIX",
    help="The server's log_line_prefix, as in postgresql.conf (pg-stderr; default: detected).",
)
@click.option(
    "--timezone",
    metavar="ZONE",
    help="Zone for log times whose zone abbreviation is ambiguous (e.g. Europe/Paris; "
    "default UTC).",
)
@click.option("--sort", type=click.Choice(SORTS), default="total", show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option(
    "--show-values",
    is_flag=True,
    help="Show samples, bind parameters and plans with their literal values (default: redacted).",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write a self-contained HTML report (charts of queries and time per minute).",
)
@click.option(
    "--store",
    "store",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[=PATH]",
    help=setting_help(
        "store",
        "Write the statements into the store as windows (the configured store, or "
        "--store=PATH); its deploy markers split the report",
    ),
)
@click.option(
    "--follow",
    is_flag=True,
    help="Keep reading the file as it grows (rotation-safe, like tail -F), store its windows "
    "and detect regressions as `watch` does; one file.",
)
@click.option(
    "--interval",
    type=FiniteFloat(min=0, min_open=True),
    help=setting_help("interval", "With --follow: seconds between reads."),
)
@click.option(
    "--duration",
    type=FiniteFloat(min=0, min_open=True),
    help="With --follow: stop after this many seconds (default: until Ctrl-C).",
)
@dsn_option(
    "With --follow: the database the log is of, for triage figures and EXPLAIN "
    "(optional: the log alone is enough)"
)
@click.option(
    "--detect/--no-detect",
    default=True,
    show_default=True,
    help="With --follow: detect regressions after every read, open incidents, alert.",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes (pieces of big uncompressed files, whole compressed ones).",
)
@click.option("--no-progress", is_flag=True, help="No progress bar on a terminal.")
@json_option("the digest")
@click.pass_obj
def digest_cmd(
    obj: Context,
    files: tuple[str, ...],
    fmt: str,
    prefix: str | None,
    timezone: str | None,
    sort: str,
    limit: int,
    show_values: bool,
    html_path: Path | None,
    store: str | None,
    follow: bool,
    interval: float | None,
    duration: float | None,
    dsn: str | None,
    detect: bool,
    jobs: int,
    no_progress: bool,
    as_json: bool,
) -> None:
    """Digest PostgreSQL (stderr, csvlog, jsonlog) and MySQL slow logs: the top statements by
    fingerprint, as pgBadger and pt-query-digest report them."""
    from querywatch.logs.reader import expand

    options = ParseOptions(prefix=prefix, timezone=timezone)
    paths = expand(files)
    if follow:
        if len(paths) != 1:
            raise ConfigError("--follow reads one file: name the log being written")
        cfg = obj.config(store=store or None, interval=interval, dsn=dsn)
        _follow(cfg, paths[0], fmt, options, duration=duration, detect=detect)
        return
    store_cfg = obj.config(store=store or None) if store is not None else None
    digest, reports = _digest(paths, fmt, options, store_cfg, jobs=jobs, show=not no_progress)
    from querywatch.logs.report import digest_json

    data = digest_json(digest, reports, limit=limit, sort=sort, show_values=show_values)
    if html_path is not None:
        _write_html(html_path, data)
    if as_json:
        emit_json(data)
        return
    from querywatch.cli.digest_view import print_report

    print_report(digest, reports, data, sort=sort, show_values=show_values)


def _digest(
    paths: list[Path],
    fmt: str,
    options: ParseOptions,
    cfg: Config | None,
    *,
    jobs: int,
    show: bool,
) -> tuple[Digest, list[FileReport]]:
    from querywatch.logs.scan import digest_files, plan_files

    plans = plan_files(paths, fmt, options)
    if cfg is None:
        with _progress(plans, show) as progress:
            return digest_files(plans, progress=progress, jobs=jobs)
    if jobs > 1:
        err_console.print("--store reads the files in one process (-j is for reports only)")
    the_store = _open_store(cfg)
    try:
        return _digest_into(the_store, str(cfg["store"]), plans, show=show)
    finally:
        the_store.close()


STORED_PREFIX = "log:stored:"
"""State key prefix of the log files `digest --store` has written (by content)."""


def _digest_into(
    the_store: Store, where: str, plans: list[Plan], *, show: bool
) -> tuple[Digest, list[FileReport]]:
    """Digest every file, storing the windows of those the store has not had yet."""
    import json

    from querywatch.logs.digest import Digest, phases_between
    from querywatch.logs.reader import content_key
    from querywatch.logs.scan import dialect_of, digest_files
    from querywatch.logs.windows import Windows

    deploys = the_store.deploys()
    phases = phases_between([(d.started_at, f"deploy {d.version}") for d in deploys])
    windows = Windows(the_store.write_windows, dialect_of(plans))
    digest = Digest(dialect_of(plans), phases=phases)
    reports: list[FileReport] = []
    done = 0
    with _progress(plans, show) as bar:
        for plan in plans:
            key = STORED_PREFIX + content_key(plan.path)
            stored = the_store.get_state(key)
            if stored is not None:
                when = json.loads(stored).get("stored_at", 0)
                err_console.print(
                    safe_text(
                        f"{plan.path}: already stored on {utc_text(when)}: reported, not stored"
                    )
                )
            digest.window_sink = None if stored is not None else windows.add
            _, got = digest_files([plan], digest=digest, progress=_shifted(bar, done))
            reports.extend(got)
            windows.flush()
            if stored is None:
                the_store.set_state(
                    key, json.dumps({"path": str(plan.path), "stored_at": time.time()})
                )
            done += plan.size
    digest.window_sink = None
    _drop_empty_phases(digest)
    err_console.print(
        safe_text(f"stored {windows.written:,} windows in {where}")
        if windows.written
        else "nothing new to store"
    )
    from querywatch.logs.logged_plans import store_logged_plans

    if plans_kept := store_logged_plans(the_store, digest):
        err_console.print(f"kept the slowest logged plan of {plans_kept:,} fingerprints")
    return digest, reports


def _shifted(bar: _Bar | None, offset: int) -> Callable[[int], None] | None:
    """The bar's callback for one file among several: its bytes come after ``offset``."""
    if bar is None:
        return None
    return lambda done: bar(offset + done)


def _drop_empty_phases(digest: Digest) -> None:
    """Keep only the phases the log reaches (deploys outside it split nothing)."""
    keep = [i for i, entries in enumerate(digest.by_phase) if entries]
    if len(keep) == len(digest.phases):
        return
    if not keep:
        keep = [0]
    digest.phases = tuple(digest.phases[i] for i in keep)
    digest.by_phase = [digest.by_phase[i] for i in keep]


def _open_store(cfg: Config) -> Store:
    """The store to write into; a log file given as its path is refused (``--store FILE``
    takes the next word as the path: ``--store=PATH`` or the flag after the files)."""
    where = Path(str(cfg["store"])).expanduser()
    if where.is_file() and where.stat().st_size:
        with open(where, "rb") as f:
            magic = f.read(16)
        if magic != b"SQLite format 3\x00":
            raise ConfigError(
                f"--store {where}: that is not a store but (probably) a log; write --store=PATH, "
                "or put --store after the files",
                setting="store",
            )
    try:
        return open_configured_store(cfg)
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"--store {where}: {exc}", setting="store") from None


class _Bar:
    """A Rich progress bar (bytes, bytes/s, ETA) over every file's bytes on disk."""

    def __init__(self, total: int) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.progress = Progress(
            TextColumn("digesting"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=err_console,
            transient=True,
        )
        self.task = self.progress.add_task("digest", total=total)
        self.last = 0.0

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if now - self.last >= 0.1:
            self.last = now
            self.progress.update(self.task, completed=done)


class _progress:  # a context manager, named like contextlib's
    def __init__(self, plans: list[Plan], show: bool) -> None:
        self.bar = _Bar(sum(p.size for p in plans)) if show and err_console.is_terminal else None

    def __enter__(self) -> _Bar | None:
        if self.bar is not None:
            self.bar.progress.start()
        return self.bar

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.progress.stop()


def _write_html(path: Path, data: dict[str, Any]) -> None:
    from querywatch.atomic import write_atomic
    from querywatch.logs.report_html import render

    try:
        write_atomic(path, render(data))
    except OSError as exc:
        raise ConfigError(f"--html {path}: cannot write: {exc.strerror or exc}") from None
    err_console.print(safe_text(f"wrote {path}"))


def _follow(
    cfg: Config,
    path: Path,
    fmt: str,
    options: ParseOptions,
    *,
    duration: float | None,
    detect: bool,
) -> None:
    """The agent over a followed log: poll, store, detect, alert, as `watch` does."""
    from querywatch.cli.context import retention_of
    from querywatch.cli.watch import agent_monitor, run_agent
    from querywatch.logs.source import LogSource
    from querywatch.watch import Agent, AgentEvent

    fmt, options = _follow_format(path, fmt, options)
    source = LogSource(path, fmt, options)
    the_store = _open_store(cfg)
    monitor = notifier = None
    if detect:
        from querywatch.respond.setup import notifier_from_config

        notifier = notifier_from_config(cfg, err_console)
        monitor = agent_monitor(cfg, the_store, notifier)
        if not cfg["dsn"]:
            monitor.health = None  # only the log: no server figures for triage
            monitor.explain_target = None

    def on_event(event: AgentEvent) -> None:
        from querywatch.timefmt import clock

        stamp = clock(event.at)
        if event.kind == "polled":
            calls = sum(w.calls for w in event.windows)
            if agent.stats.polls == 1:
                err_console.print(
                    safe_text(
                        f"following {path} ({fmt}) every {cfg['interval']:g} s, storing in "
                        f"{cfg['store']} (Ctrl-C to stop)"
                    )
                )
            click.echo(f"{stamp} {calls} statements in {len(event.windows)} windows")
        else:
            err_console.print(safe_text(f"{stamp} {event.message}"))

    agent = Agent(
        source,
        the_store,
        state_key=f"log:{path.resolve()}",
        interval=cfg["interval"],
        retention=retention_of(cfg),
        on_event=on_event,
        monitor=monitor,
        notifier=notifier,
    )
    run_agent(agent, lambda: agent.run(duration), noun="reads")


def _follow_format(path: Path, fmt: str, options: ParseOptions) -> tuple[str, ParseOptions]:
    """The format (and stderr prefix) of a followed file, from what it holds so far."""
    from querywatch.logs.scan import plan_files

    if not path.exists() or not path.stat().st_size:
        if fmt == "auto":
            raise ConfigError(f"{path}: empty so far; name its format with --format")
        return fmt, options
    plan = plan_files([path], fmt, options)[0]
    return plan.format, plan.options
