"""`querywatch top` (what the store recorded) and `querywatch settings` (what is configured)."""

from __future__ import annotations

import click
from rich.console import Console

from querywatch import render
from querywatch.cli.context import Context, emit_json, opened_store, time_range
from querywatch.cli.options import json_option, store_option, time_range_options
from querywatch.config import SETTINGS
from querywatch.dsn import redact
from querywatch.terminal import one_line


@click.command()
@store_option
@time_range_options
@click.option(
    "--sort",
    type=click.Choice(["total", "mean", "calls", "p95"]),
    default="total",
    show_default=True,
    help="Rank by total time, mean time, calls or p95 latency.",
)
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option(
    "--release",
    metavar="RELEASE",
    help="Only the calls of this application release (as in-app capture recorded it; '' for "
    "those of no known release). Default: every release, summed.",
)
@json_option("the fingerprints as a list")
@click.pass_obj
def top(
    obj: Context,
    store: str | None,
    since: str | None,
    until: str | None,
    sort: str,
    limit: int,
    release: str | None,
    as_json: bool,
) -> None:
    """The most expensive fingerprints recorded in the store."""
    cfg = obj.config(store=store)
    since_ts, until_ts, now = time_range(since, until)
    with opened_store(cfg, create=True, read_only=True) as the_store:
        rows = the_store.top(
            since=since_ts,
            until=until_ts,
            sort=sort,  # type: ignore[arg-type]
            limit=limit,
            release=release,
        )
    if as_json:
        emit_json([render.summary_to_json(r) for r in rows])
        return
    if not rows:
        shown = "" if release is None else f" of release {one_line(release)!r}"
        click.echo(f"no statements{shown} recorded in that range")
        return
    seconds = render.data_seconds(rows, since_ts, until_ts if until_ts is not None else now)
    title = f"top by {sort}" if release is None else f"top of release {one_line(release)} by {sort}"
    if seconds is not None:
        title += f", calls/s over the {seconds:,.0f} s the data covers"
    out = Console(highlight=False)
    out.print(render.top_table(rows, seconds=seconds, title=title, width=out.width))


@click.command()
@json_option("the settings as a list")
@click.pass_obj
def settings(obj: Context, as_json: bool) -> None:
    """Every setting with its value and where it came from (secrets redacted)."""
    cfg = obj.config()
    rows = []
    for s in SETTINGS:
        value = cfg[s.name]
        shown = value
        if s.secret and value is not None:
            # DSNs keep their shape with the password hidden; other secrets are hidden whole.
            shown = redact(str(value)) if s.name in ("dsn", "store") else "***"
        rows.append(
            {
                "name": s.name,
                "value": shown,
                "from": cfg.origins[s.name],
                "env": s.env,
                "help": s.help,
            }
        )
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        click.echo(f"{row['name']:<24} {one_line(str(row['value'])):<32} ({row['from']})")
