"""`querywatch watch` (the agent) and `querywatch demo` (the replayed outage)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.live import Live

from querywatch import render
from querywatch.cli.context import Context, err_console, open_configured_store, retention_of
from querywatch.cli.options import FiniteFloat, dsn_option, setting_help, store_option
from querywatch.dsn import redact
from querywatch.envelope import dumps, success
from querywatch.errors import ConfigError
from querywatch.records import window_start
from querywatch.terminal import safe_text
from querywatch.timefmt import clock

if TYPE_CHECKING:
    from collections.abc import Callable

    from querywatch.config import Config
    from querywatch.demo.canary import CanaryPlan
    from querywatch.demo.run import DemoOptions, DemoReport
    from querywatch.monitor import Monitor
    from querywatch.respond.notifier import Notifier
    from querywatch.store.base import Store
    from querywatch.watch import Agent

AGENT_CACHE_KIB = 256
"""The agent's SQLite page cache, in KiB (SQLite's default is 2,000)."""


@click.command()
@dsn_option("Database to monitor.")
@store_option
@click.option(
    "--interval",
    type=FiniteFloat(min=0, min_open=True),
    help=setting_help("interval", "Seconds between polls."),
)
@click.option(
    "--duration",
    type=FiniteFloat(min=0, min_open=True),
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
    from querywatch.respond.setup import notifier_from_config
    from querywatch.watch import Agent, AgentEvent

    cfg = obj.config(dsn=dsn, store=store, interval=interval)
    if not cfg["dsn"]:
        raise ConfigError("no database to watch: pass --dsn or set QUERYWATCH_DSN", setting="dsn")
    target = redact(cfg["dsn"])
    # A long-running agent writes and rereads the last half hour: a small page cache (the OS
    # caches the file anyway) keeps its memory flat as the store grows.
    the_store = open_configured_store(cfg, cache_kib=AGENT_CACHE_KIB)
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
    monitor = agent_monitor(cfg, the_store, notifier) if detect else None
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

    def run() -> None:
        nonlocal live
        if no_live:
            agent.run(duration)
        else:
            with Live(console=out, refresh_per_second=2, transient=False) as live:
                agent.run(duration)

    run_agent(agent, run, noun="polls")


def agent_monitor(cfg: Config, store: Store, notifier: Notifier) -> Monitor:
    """The monitor an agent runs after every poll (detection, incidents, alerts, rollback)."""
    from querywatch.monitor import monitor_from_config

    return monitor_from_config(
        cfg,
        store,
        notifier,
        repo_root=Path.cwd(),
        on_event=lambda e: err_console.print(safe_text(e.message)),
    )


def run_agent(agent: Agent, run: Callable[[], object], *, noun: str) -> None:
    """``run`` (the agent's loop) until its duration ends or Ctrl-C; then close the agent's
    source and store and say what it did (``noun``: what one poll is called)."""
    try:
        run()
    except KeyboardInterrupt:
        err_console.print("stopped")
    finally:
        agent.source.close()
        agent.store.close()
    s = agent.stats
    err_console.print(
        f"{s.polls} {noun}, {s.failed_polls} failed, {s.windows_stored} windows stored"
    )


@click.command()
@click.option("--dsn", help="Run the shop on this PostgreSQL database instead of SQLite.")
@click.option(
    "--scale",
    type=click.IntRange(min=1000),
    help="Orders to seed [default: 1,000,000 on SQLite, 2,000,000 on PostgreSQL].",
)
@click.option(
    "--duration",
    type=FiniteFloat(min=3),
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
    help="Also write the summary to this file, in the JSON envelope (docs/json.md).",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65534),
    help="Serve the shop on this port and the next (blue/green) [default: free ports].",
)
@click.option(
    "--rate",
    type=FiniteFloat(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Requests per second from the simulated users.",
)
@click.option("--users", type=click.IntRange(min=1), default=300, show_default=True)
@click.option(
    "--canary-weight",
    type=FiniteFloat(min=0, max=100, min_open=True, max_open=True),
    default=10.0,
    show_default=True,
    help="Percent of users the bad release takes first, as a canary next to v1.",
)
@click.option(
    "--canary-steps",
    default="",
    help="Further canary weights, comma-separated and rising (e.g. 25,50), each held while the "
    "analysis passes; promoted to every user after the last [default: none].",
)
@click.option(
    "--no-canary",
    is_flag=True,
    help="Deploy the bad release to every user at once, as the report's team did.",
)
@click.option(
    "--serve",
    is_flag=True,
    help="Serve the dashboard over the demo's store while it runs (loopback, no auth) and print "
    "its URL first: watch the outage happen on the page.",
)
@click.option(
    "--serve-port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="The dashboard's port with --serve (0: any free port).",
)
@click.option(
    "--keep-serving",
    is_flag=True,
    help="With --serve (implied): keep the dashboard up after the demo ends, until Ctrl-C.",
)
def demo(
    dsn: str | None,
    scale: int | None,
    duration: float,
    workdir: Path,
    json_path: Path | None,
    port: int | None,
    rate: float,
    users: int,
    canary_weight: float,
    canary_steps: str,
    no_canary: bool,
    serve: bool,
    serve_port: int,
    keep_serving: bool,
) -> None:
    """Replay the outage: a bad deploy under load, and querywatch closing the loop by itself.

    The bad release goes out as a canary to a share of users; the canary analysis compares it
    with v1 query by query and aborts it. Then the guarded rollback, the cache-flush runbook
    step, recovery verified, the incident resolved and a postmortem written to the work
    directory. --no-canary replays the all-at-once deploy of the report. --serve shows it all
    on the dashboard as it happens.
    """
    from querywatch.demo.run import DemoOptions
    from querywatch.demo.view import summary_view

    options = DemoOptions(
        workdir=workdir,
        dsn=dsn,
        scale=scale,
        duration=duration,
        port=port,
        rate=rate,
        users=users,
        canary=None if no_canary else canary_plan(canary_weight, canary_steps),
    )
    if json_path is not None:
        check_writable(json_path)
    out = Console(highlight=False)
    dashboard = None
    if serve or keep_serving:
        from querywatch.demo.dashboard import Dashboard

        dashboard = Dashboard(options.store_path, serve_port)
        # One line, never wrapped: a terminal makes it a link, a script reads it.
        out.print(
            f"dashboard: {dashboard.url} (loopback, no auth): watch the outage there",
            soft_wrap=True,
        )
    try:
        report = _play(options, out)
        out.print(summary_view(report))
        if json_path is not None:
            json_path.write_text(dumps(success(report.as_json())) + "\n")
            out.print(f"summary written to {json_path}")
        if dashboard is not None and keep_serving and report.completed:
            out.print(f"the dashboard stays up at {dashboard.url} (Ctrl-C to stop)", soft_wrap=True)
            dashboard.serve_until_interrupted()
            err_console.print("stopped")
    finally:
        if dashboard is not None:
            dashboard.close()
    if not report.completed:
        sys.exit(130)


def _play(options: DemoOptions, out: Console) -> DemoReport:
    """Run the demo in a worker thread, drawing its progress live; Ctrl-C stops it early (a
    partial report), a second Ctrl-C (or one while seeding) interrupts."""
    import signal
    import threading

    from rich.progress import Progress

    from querywatch.demo.run import DemoProgress, DemoReport, run_demo
    from querywatch.demo.view import alert_view, live_panel, step_view

    state = DemoProgress()
    stop = threading.Event()

    def on_sigint(signum: int, frame: object) -> None:
        if state.phase == "seeding" or stop.is_set():
            raise KeyboardInterrupt
        err_console.print("stopping: shutting the shop down and summarizing what ran…")
        stop.set()

    previous = signal.signal(signal.SIGINT, on_sigint)
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
    finally:
        signal.signal(signal.SIGINT, previous)
        stop.set()
    report = result["report"]
    assert isinstance(report, DemoReport)
    return report


def canary_plan(weight: float, steps: str) -> CanaryPlan:
    """The demo's canary from --canary-weight and --canary-steps, or a one-line usage error."""
    from querywatch.demo.canary import CanaryPlan

    try:
        later = tuple(float(part) for part in steps.split(",") if part.strip())
        return CanaryPlan(weight, later)
    except ValueError as exc:
        message = str(exc) if "canary" in str(exc) else f"not a list of percentages: {steps!r}"
        raise click.BadParameter(message, param_hint="--canary-steps") from None


def check_writable(path: Path) -> None:
    """Fail before a long run, not after it, when an output file cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a"):
            pass
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
