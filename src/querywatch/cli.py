"""One entry point: `querywatch <command>`.

Commands wire source -> store -> view and hold no analysis of their own.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.live import Live
from rich.text import Text

from querywatch import render
from querywatch.config import SETTINGS, Config, load_config
from querywatch.dsn import redact
from querywatch.errors import ConfigError, QuerywatchError
from querywatch.records import window_start
from querywatch.store.base import Retention, Store
from querywatch.terminal import one_line, safe_text
from querywatch.timefmt import clock
from querywatch.timespec import parse_time

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


class Context:
    def __init__(self, debug: bool, config_file: Path | None) -> None:
        self.debug = debug
        self.config_file = config_file

    def config(self, **flags: Any) -> Config:
        return load_config(flags, config_file=self.config_file)


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(
        Text.assemble(("querywatch: error:", "bold red"), " ", safe_text(redact(message))),
        soft_wrap=True,
    )
    sys.exit(code)


def open_configured_store(cfg: Config, *, create: bool = True, read_only: bool = False) -> Store:
    from querywatch.store import open_store

    return open_store(cfg["store"], create=create, read_only=read_only)


def retention_of(cfg: Config) -> Retention:
    return Retention(
        raw_seconds=cfg["retention_raw_hours"] * 3600,
        minute_seconds=cfg["retention_minute_days"] * 86400,
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--debug", is_flag=True, help="Show the full traceback on errors.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path),
    help="Config file (default: ./querywatch.toml or [tool.querywatch] in pyproject.toml).",
)
@click.version_option(package_name="querywatch")
@click.pass_context
def cli(ctx: click.Context, debug: bool, config_file: Path | None) -> None:
    """Catch the SQL query that takes your service down, name it, and close the loop."""
    ctx.obj = Context(debug, config_file)


@cli.command()
@click.option("--dsn", help="Database to monitor [env QUERYWATCH_DSN].")
@click.option("--store", help="Store path or PostgreSQL URL [env QUERYWATCH_STORE].")
@click.option("--interval", type=float, help="Seconds between polls [default 10].")
@click.option(
    "--duration",
    type=click.FloatRange(min=0, min_open=True),
    help="Stop after this many seconds (default: run until Ctrl-C).",
)
@click.option("--no-live", is_flag=True, help="Plain log lines instead of the live table.")
@click.option(
    "--detect/--no-detect",
    default=True,
    show_default=True,
    help="Detect regressions after every poll, open incidents and send alerts.",
)
@click.pass_obj
def watch(
    obj: Context,
    dsn: str | None,
    store: str | None,
    interval: float | None,
    duration: float | None,
    no_live: bool,
    detect: bool,
) -> None:
    """Poll pg_stat_statements into the store, detect regressions and alert."""
    from querywatch.capture.pg_stat_statements import PgStatStatementsSource
    from querywatch.monitor import monitor_from_config
    from querywatch.respond.setup import notifier_from_config
    from querywatch.watch import Agent, AgentEvent

    cfg = obj.config(dsn=dsn, store=store, interval=interval)
    if not cfg["dsn"]:
        raise ConfigError("no database to watch: pass --dsn or set QUERYWATCH_DSN", setting="dsn")
    target = redact(cfg["dsn"])
    the_store = open_configured_store(cfg)
    source = PgStatStatementsSource(cfg["dsn"], statement_timeout_ms=cfg["statement_timeout_ms"])
    started = time.time()
    out = Console(highlight=False)
    live: Live | None = None

    def on_event(event: AgentEvent) -> None:
        stamp = clock(event.at)
        if agent.stats.polls == 1 and event.kind == "polled":
            err_console.print(
                safe_text(
                    f"watching {target} every {cfg['interval']:g} s, storing in "
                    f"{redact(str(cfg['store']))} (Ctrl-C to stop)"
                )
            )
        if event.kind != "polled":
            style = {"blind": "bold yellow", "incident": "bold red"}.get(event.kind, "green")
            err_console.print(safe_text(f"{stamp} {event.message}", style=style))
        if live is not None:
            # Whole windows: the one the agent started in counts too.
            rows = the_store.top(since=window_start(started), limit=15)
            live.update(
                render.top_table(
                    rows,
                    seconds=max(time.time() - started, 1e-9),
                    title=f"querywatch watch {target} — since {clock(started)}",
                    width=out.width,
                )
            )
        elif event.kind == "polled":
            for w in sorted(event.windows, key=lambda w: -w.total_ms)[:10]:
                out.print(
                    safe_text(
                        f"{stamp} {w.fingerprint[:12]} calls={w.calls} total_ms={w.total_ms:.1f} "
                        f"mean_ms={w.mean_ms:.2f} {w.normalized[:100]}"
                    ),
                    soft_wrap=True,
                )
            if not event.windows:
                out.print(f"{stamp} no new statements")

    notifier = notifier_from_config(cfg, err_console)
    monitor = None
    if detect:
        monitor = monitor_from_config(
            cfg,
            the_store,
            notifier,
            repo_root=Path.cwd(),
            on_event=lambda e: err_console.print(safe_text(e.message)),
        )
    agent = Agent(
        source,
        the_store,
        state_key=f"pg_stat_statements:{target}",
        interval=cfg["interval"],
        retention=retention_of(cfg),
        on_event=on_event,
        monitor=monitor,
        notifier=notifier,
    )
    try:
        if no_live:
            agent.run(duration)
        else:
            with Live(console=out, refresh_per_second=2, transient=False) as live:
                agent.run(duration)
    except KeyboardInterrupt:
        err_console.print("stopped")
    finally:
        source.close()
        the_store.close()
    s = agent.stats
    err_console.print(
        f"{s.polls} polls, {s.failed_polls} failed, {s.windows_stored} windows stored"
    )


@cli.command()
@click.option("--dsn", help="Run the shop on this PostgreSQL database instead of SQLite.")
@click.option(
    "--scale",
    type=click.IntRange(min=1000),
    help="Orders to seed [default: 1,000,000 on SQLite, 2,000,000 on PostgreSQL].",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=3),
    default=100.0,
    show_default=True,
    help="Seconds of load: 30% on v1, up to 50% on v2 (until querywatch rolls it back), then v1.",
)
@click.option(
    "--workdir",
    type=click.Path(path_type=Path),
    default=Path(".querywatch/demo"),
    show_default=True,
    help="Where the shop database and the demo store live.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(path_type=Path),
    help="Also write the summary as JSON to this file.",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65534),
    help="Serve the shop on this port and the next (blue/green) [default: free ports].",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Requests per second from the simulated users.",
)
@click.option("--users", type=click.IntRange(min=1), default=300, show_default=True)
def demo(
    dsn: str | None,
    scale: int | None,
    duration: float,
    workdir: Path,
    json_path: Path | None,
    port: int | None,
    rate: float,
    users: int,
) -> None:
    """Replay the outage: a bad deploy under load, and querywatch closing the loop by itself.

    Detection, attribution, a guarded rollback, the cache-flush runbook step, recovery verified,
    the incident resolved and a postmortem written to the work directory.
    """
    import signal
    import threading

    from rich.progress import Progress

    from querywatch.demo.run import DemoOptions, DemoProgress, run_demo
    from querywatch.demo.view import alert_view, live_panel, step_view, summary_view

    options = DemoOptions(
        workdir=workdir, dsn=dsn, scale=scale, duration=duration, port=port, rate=rate, users=users
    )
    if json_path is not None:
        check_writable(json_path)
    out = Console(highlight=False)
    state = DemoProgress()
    stop = threading.Event()

    def on_sigint(signum: int, frame: object) -> None:
        if state.phase == "seeding" or stop.is_set():
            raise KeyboardInterrupt
        err_console.print("stopping: shutting the shop down and summarizing what ran…")
        stop.set()

    previous = signal.signal(signal.SIGINT, on_sigint)
    report = None
    try:
        with Progress(console=out, transient=True) as bar:
            task = bar.add_task("seeding the shop", total=1.0)

            def on_seed(fraction: float, message: str) -> None:
                bar.update(task, completed=fraction, description=message)

            result: dict[str, object] = {}

            def work() -> None:
                try:
                    result["report"] = run_demo(options, on_seed=on_seed, progress=state, stop=stop)
                except BaseException as exc:  # re-raised on the main thread
                    result["error"] = exc

            worker = threading.Thread(target=work, name="querywatch-demo", daemon=True)
            worker.start()
            while worker.is_alive() and state.phase in ("starting", "seeding"):
                worker.join(0.2)
        shown = steps_shown = 0
        with Live(console=out, refresh_per_second=4) as live:
            while True:
                # Print each alert the moment it fires, above the live panel.
                for alert in state.alerts[shown:]:
                    live.console.print(alert_view(alert))
                shown = len(state.alerts)
                for event in state.steps[steps_shown:]:
                    live.console.print(step_view(event))
                steps_shown = len(state.steps)
                live.update(live_panel(state, options.slo_ms))
                if not worker.is_alive():
                    break
                worker.join(0.25)
        if "error" in result:
            raise result["error"]  # type: ignore[misc]
        report = result["report"]
    finally:
        signal.signal(signal.SIGINT, previous)
        stop.set()
    from querywatch.demo.run import DemoReport

    assert isinstance(report, DemoReport)
    out.print(summary_view(report))
    if json_path is not None:
        json_path.write_text(json.dumps(report.as_json(), indent=2) + "\n")
        out.print(f"summary written to {json_path}")
    if not report.completed:
        sys.exit(130)


def check_writable(path: Path) -> None:
    """Fail before a long run, not after it, when an output file cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a"):
            pass
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None


@cli.command()
@click.option("--store", help="Store path or PostgreSQL URL [env QUERYWATCH_STORE].")
@click.option("--since", help="Start of the range: 10m, 2h, 1d, an ISO time or epoch seconds.")
@click.option("--until", help="End of the range (same forms as --since; default now).")
@click.option(
    "--sort",
    type=click.Choice(["total", "mean", "calls", "p95"]),
    default="total",
    show_default=True,
    help="Rank by total time, mean time, calls or p95 latency.",
)
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@click.pass_obj
def top(
    obj: Context,
    store: str | None,
    since: str | None,
    until: str | None,
    sort: str,
    limit: int,
    as_json: bool,
) -> None:
    """The most expensive fingerprints recorded in the store."""
    cfg = obj.config(store=store)
    now = time.time()
    since_ts = parse_time(since, now=now, option="--since") if since else None
    until_ts = parse_time(until, now=now, option="--until") if until else None
    the_store = open_configured_store(cfg, read_only=True)
    try:
        rows = the_store.top(since=since_ts, until=until_ts, sort=sort, limit=limit)  # type: ignore[arg-type]
    finally:
        the_store.close()
    if as_json:
        click.echo(render.dumps([render.summary_to_json(r) for r in rows]))
        return
    if not rows:
        click.echo("no statements recorded in that range")
        return
    seconds = render.data_seconds(rows, since_ts, until_ts if until_ts is not None else now)
    title = f"top by {sort}"
    if seconds is not None:
        title += f", calls/s over the {seconds:,.0f} s the data covers"
    out = Console(highlight=False)
    out.print(render.top_table(rows, seconds=seconds, title=title, width=out.width))


@cli.command("fingerprint")
@click.argument("sql")
@click.option(
    "--dialect",
    type=click.Choice(["postgres", "mysql", "sqlite"]),
    default="postgres",
    show_default=True,
    help="How to read quotes and escapes.",
)
@click.option("--json", "as_json", is_flag=True, help="Print {fingerprint, normalized} as JSON.")
def fingerprint_cmd(sql: str, dialect: str, as_json: bool) -> None:
    """The fingerprint and normalized text of one statement (`-` reads it from stdin)."""
    from querywatch.sql import fingerprint

    text = sys.stdin.read() if sql == "-" else sql
    fp = fingerprint(text, dialect)
    if as_json:
        click.echo(json.dumps({"fingerprint": fp.id, "normalized": fp.normalized}))
    else:
        click.echo(f"{fp.id}  {one_line(fp.normalized)}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of settings.")
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
        click.echo(render.dumps(rows))
        return
    for row in rows:
        click.echo(f"{row['name']:<24} {one_line(str(row['value'])):<32} ({row['from']})")


def _register_commands() -> None:
    from querywatch.deploys import deploy, deploys_cmd
    from querywatch.gate.cli import register as register_gate
    from querywatch.incidents.cli import register as register_incidents
    from querywatch.plans.cli import register as register_explain
    from querywatch.respond.cli import register as register_respond
    from querywatch.sql.cli import register as register_lint
    from querywatch.web.server import serve

    register_incidents(cli, lambda obj, store: obj.config(store=store))
    cli.add_command(deploy)
    cli.add_command(deploys_cmd)
    cli.add_command(serve)
    register_respond(cli, lambda obj, **flags: obj.config(**flags))
    register_lint(cli, lambda obj: obj.config())
    register_gate(cli, lambda obj: obj.config())
    register_explain(cli, lambda obj, dsn: obj.config(dsn=dsn))


_register_commands()


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; a QuerywatchError becomes one red line and exit code 1."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="querywatch", standalone_mode=False)
    except click.exceptions.Abort:
        fail("interrupted", 130)
    except click.ClickException as exc:
        if debug:
            raise
        fail(exc.format_message(), exc.exit_code)
    except QuerywatchError as exc:
        if debug:
            raise
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted", 130)


if __name__ == "__main__":
    main()
