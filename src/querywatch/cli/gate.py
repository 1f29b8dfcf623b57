"""``querywatch check``: the CI gate over a run file that ``pytest --querywatch`` wrote.

Exit codes: 0 clean (or everything accepted by the baseline, or only findings below
``--fail-on``), 1 new findings or regressions at ``--fail-on`` or above (default warning; ``info``
never fails), 2 could not check (see :mod:`querywatch.gate.check`).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import click
from rich.console import Console
from rich.progress import Progress

from querywatch.cli.context import Context, could_not_check, opened_store
from querywatch.cli.options import store_option
from querywatch.config import setting
from querywatch.gate.baseline import DEFAULT_BASELINE_PATH
from querywatch.gate.check import DEFAULT_FAIL_ON, DEFAULT_MAX_REPEATS, FAIL_ON, run_check
from querywatch.gate.collect import DEFAULT_RUN_PATH, GateInputError, GateRun
from querywatch.gate.reports import FORMATS, render


@click.command("check")
@click.option(
    "--run",
    "run_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=DEFAULT_RUN_PATH,
    show_default=True,
    help="The run file `pytest --querywatch` wrote.",
)
@click.option(
    "--explain-dsn",
    metavar="DSN",
    help="EXPLAIN against this database: a PostgreSQL DSN or a SQLite file, ideally a staging"
    " copy with realistic data (default: the test database each statement ran on).",
)
@click.option(
    "--baseline",
    type=click.Path(path_type=Path, dir_okay=False),
    default=DEFAULT_BASELINE_PATH,
    show_default=True,
    help="The committed baseline of accepted queries and findings.",
)
@click.option(
    "--update-baseline",
    is_flag=True,
    help="Accept the current state: rewrite the baseline and exit 0.",
)
@click.option(
    "--max-repeats",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_REPEATS,
    show_default=True,
    help="N+1: flag a read that one call of a test into the application runs more than this"
    " many times.",
)
@click.option(
    "--fail-on",
    type=click.Choice(FAIL_ON),
    default=DEFAULT_FAIL_ON,
    show_default=True,
    help="The lowest severity of a new finding or regression that fails the gate (exit 1);"
    " info findings are reported and never fail.",
)
@click.option(
    "--format",
    "formats",
    type=click.Choice(FORMATS),
    multiple=True,
    help="Report format [default: terminal]; repeat it, each with its own -o, for several.",
)
@click.option(
    "-o",
    "--output",
    "outputs",
    type=click.Path(path_type=Path, dir_okay=False),
    multiple=True,
    help="Write the report of the --format in the same position to this file (the terminal"
    " report still goes to stdout).",
)
@click.option(
    "--source",
    "sources",
    type=click.Path(path_type=Path, exists=True),
    multiple=True,
    help="Also lint the SQL found in these files or directories.",
)
@store_option
@click.pass_obj
def check(
    obj: Context,
    run_path: Path,
    explain_dsn: str | None,
    baseline: Path,
    update_baseline: bool,
    max_repeats: int,
    fail_on: str,
    formats: tuple[str, ...],
    outputs: tuple[Path, ...],
    sources: tuple[Path, ...],
    store: str | None,
) -> None:
    """The CI gate: lint and EXPLAIN every query the tests ran, flag N+1, compare with the
    baseline. Exit 0 clean, 1 new findings or regressions at --fail-on or above, 2 could not
    check. With --store (or its env variable), also record the report for the dashboard's
    /checks page."""
    if len(outputs) > max(len(formats), 1):
        raise click.UsageError("more -o files than --format options: give one -o per --format")
    chosen = formats or ("terminal",)
    with could_not_check():
        timeout = int(obj.config()["statement_timeout_ms"])
        if sources and not run_path.exists() and run_path == DEFAULT_RUN_PATH:
            run = GateRun()  # a source-only check
        else:
            run = GateRun.load(run_path)
        with _progress() as on_progress:
            report = run_check(
                run,
                explain_dsn=explain_dsn,
                baseline_path=baseline,
                max_repeats=max_repeats,
                update_baseline=update_baseline,
                source_paths=sources,
                statement_timeout_ms=timeout,
                on_progress=on_progress,
                fail_on=fail_on,
            )
        to_stdout = [fmt for i, fmt in enumerate(chosen) if i >= len(outputs)]
        for fmt, path in zip(chosen, outputs, strict=False):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(render(report, fmt))
            except OSError as exc:
                raise GateInputError(f"cannot write {path}: {exc.strerror or exc}") from None
    if not to_stdout:
        to_stdout = ["terminal"]
    color = sys.stdout.isatty()
    for fmt in to_stdout:
        click.echo(render(report, fmt, color=color and fmt == "terminal"), nl=False)
    if store is not None or os.environ.get(setting("store").env):
        from querywatch.gate.record import record_report

        with could_not_check(), opened_store(obj.config(store=store or None), create=True) as db:
            record_report(db, report, os.environ)
    if report.exit_code:
        sys.exit(report.exit_code)


@contextlib.contextmanager
def _progress() -> Iterator[Callable[[int, int], None] | None]:
    """A transient bar on a terminal's stderr while statements are EXPLAINed; nothing in CI
    logs (not a terminal), where the report alone is wanted."""
    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("checking queries", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update
