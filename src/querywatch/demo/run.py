"""The outage, replayed: seed, serve v1 under load, deploy v2, and let querywatch close the loop.

This module only orchestrates the demo's parts (seed, deployer, load, summary), the capture that
runs inside the shop's processes, and the monitor and responder that watch the store; the CLI
draws it. querywatch does the rest by itself, through the same code as `querywatch watch`: it
detects and attributes the regression, re-checks the evidence, rolls v2 back through the guarded
path (the action is the demo's deployer), runs the cache-flush runbook step, verifies recovery
against the baseline, resolves the incident and writes the postmortem into the work directory.
If nothing fires by the end of the bad phase, the demo rolls back by hand and says so.

With a canary plan (the CLI's default), v2 first takes a share of users next to v1, the canary
analysis judges it at every monitor pass (:mod:`querywatch.demo.canary`), and a failing verdict
takes its weight to 0 before the same rollback path runs; a passing one moves it up its steps
and promotes it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from querywatch.demo.canary import STEP_S, CanaryRun
from querywatch.demo.deployer import Deploy, Deployer
from querywatch.demo.gate import check_release
from querywatch.demo.ground_truth import changed_queries
from querywatch.demo.load import LoadConfig, LoadGenerator
from querywatch.demo.report import DemoOptions, DemoProgress, DemoReport
from querywatch.demo.shop.releases import GOOD, load_release
from querywatch.demo.shop.seed import seed
from querywatch.demo.summary import summarize
from querywatch.demo.watcher import ENVIRONMENT, Watcher
from querywatch.errors import ConfigError
from querywatch.gate import CheckReport
from querywatch.incidents.repository import load_incident
from querywatch.records import DeployMarker
from querywatch.store import open_store

__all__ = ["DemoOptions", "DemoProgress", "DemoReport", "run_demo"]

#: Shares of the load's duration: before the bad deploy, on the bad release (at most: the
#: responder rolls back as soon as the evidence is strong enough), after the rollback. The
#: monitor needs 20 s of history.
PHASES = (0.3, 0.5, 0.2)

#: How long the load goes on past the after-phase for the recovery verdict to come in.
RECOVERY_GRACE_S = 40.0

#: The postmortem's file name (one per incident: the demo's store, and so its incidents, outlive
#: a run).
POSTMORTEM_FILE = "postmortem-{incident}.md"


def check_workdir(workdir: Path) -> None:
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        probe = workdir / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            f"cannot write to the work directory {workdir}: {exc.strerror or exc}",
            setting="workdir",
        ) from None


def check_ports(port: int) -> None:
    """The demo serves blue/green on ``port`` and ``port + 1``: both must be free."""
    for candidate in (port, port + 1):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", candidate))
            except OSError:
                raise ConfigError(
                    f"port {candidate} on 127.0.0.1 is already in use (the demo needs --port "
                    f"and the one after it): pick another --port",
                    setting="port",
                ) from None


def check_dsn(dsn: str) -> None:
    from querywatch.pg import connect

    connect(dsn, application_name="querywatch-demo").close()


def run_demo(
    options: DemoOptions,
    *,
    on_seed: Callable[[float, str], None] = lambda fraction, message: None,
    progress: DemoProgress | None = None,
    stop: threading.Event | None = None,
) -> DemoReport:
    """Run the whole replay; ``stop`` (or Ctrl-C) ends it early with a partial report."""
    check_workdir(options.workdir)
    if options.port is not None:
        check_ports(options.port)
    if options.dsn:
        check_dsn(options.dsn)
    progress = progress or DemoProgress()
    stop = stop or threading.Event()
    progress.phase = "seeding"
    seeded = seed(options.shop_location, options.scale, on_seed)
    dialect = "postgres" if options.dsn else "sqlite"
    good, bad = load_release(GOOD), load_release(options.release)
    truth = changed_queries(good.path, bad.path, dialect)
    store = open_store(options.store_path)

    def mark(deploy: Deploy) -> None:
        progress.deploys.append(deploy)
        if deploy.canary_weight is None:
            progress.release = deploy.version
        if deploy.promoted:
            return  # the canary's start is that release's deploy marker
        store.record_deploy(
            DeployMarker(
                id=f"demo-{deploy.version}-{deploy.started_at:.3f}",
                version=deploy.version,
                commit=deploy.commit,
                environment=ENVIRONMENT,
                started_at=deploy.started_at,
                finished_at=deploy.finished_at,
                author="querywatch demo",
                previous_version=deploy.previous_version,
                rollback=deploy.rollback,
            )
        )

    warmup, bad_for, after = (options.duration * share for share in PHASES)
    config = LoadConfig(
        rate=options.rate,
        users=options.users,
        duration=options.duration,
        timeout=options.timeout,
        products=seeded.shape.products,
        orders=seeded.shape.orders,
        seed=options.seed,
        burst_every=10.0 if options.burst_factor != 1.0 else 0.0,
        burst_for=3.0 if options.burst_factor != 1.0 else 0.0,
        burst_factor=options.burst_factor,
    )
    bad_deploy: Deploy | None = None
    rollback: Deploy | None = None
    rollback_by: str | None = None
    gate: dict[str, CheckReport] = {}
    run_started = time.time()
    completed = False
    deployer = Deployer(
        options.shop_location,
        store=str(options.store_path),
        on_deploy=mark,
        ports=(options.port, options.port + 1) if options.port is not None else (),
    )
    load = LoadGenerator(deployer.router, config, on_record=progress.records.append)
    watcher = Watcher(options, progress, deployer)
    try:
        progress.phase = f"starting {GOOD}"
        deployer.deploy(GOOD)
        progress.phase = f"{GOOD} under load"
        load.start()
        watcher.start()
        load_started = time.monotonic()
        # What the CI gate says about both releases, while v1 warms up: v2 was preventable.
        progress.phase = f"{GOOD} under load; CI gate on {GOOD} and {options.release}"
        gate = {
            v: check_release(v, options.shop_location, seeded.shape, options.workdir)
            for v in (GOOD, options.release)
        }
        progress.phase = f"{GOOD} under load"
        if not _wait(stop, load_started + warmup):
            progress.phase = f"deploying {options.release}"
            if options.canary is not None:
                bad_deploy = deployer.start_canary(options.release, options.canary.weight)
                step_s = min(STEP_S, 0.8 * bad_for / len(options.canary.weights))
                watcher.canary = CanaryRun(bad_deploy, options.canary, step_s)
                progress.phase = f"{options.release} as a canary"
            else:
                bad_deploy = deployer.deploy(options.release)
                progress.phase = f"{options.release} serving"
            # querywatch rolls back by itself once the evidence is strong enough (or promotes a
            # canary that passes); if it has not by the end of the bad phase, the demo rolls
            # back (and the summary says so).
            deadline = time.monotonic() + bad_for
            while (
                not stop.is_set()
                and time.monotonic() < deadline
                and not watcher.rolled_back.wait(0.2)
                and watcher.promoted is None
            ):
                pass
            if watcher.rollback is None and watcher.promoted is None and not stop.is_set():
                watcher.pause()  # no automatic rollback racing the demo's own
            if watcher.rollback is not None:
                rollback, rollback_by = watcher.rollback, "querywatch"
            elif watcher.promoted is not None:
                progress.phase = f"{options.release} promoted to every user"
            elif not stop.is_set():
                progress.phase = f"rolling back to {GOOD} (nothing fired)"
                rollback, rollback_by = deployer.rollback(), "demo"
                if watcher.canary is not None:
                    watcher.canary.aborted_at = rollback.switched_at
                    watcher.canary.aborted_by = "the demo (no verdict in time)"
            if rollback is not None or watcher.promoted is not None:
                if rollback is not None:
                    progress.phase = f"{GOOD} again (after rollback)"
                after_until = time.monotonic() + after
                grace_until = after_until + RECOVERY_GRACE_S
                while not stop.is_set() and time.monotonic() < grace_until:
                    if time.monotonic() >= after_until and watcher.settled():
                        break
                    stop.wait(0.2)
                if rollback is None and watcher.rollback is not None:  # a promoted bad release
                    rollback, rollback_by = watcher.rollback, "querywatch"
                if not stop.is_set():
                    completed = True
        progress.phase = "stopping" if completed else "interrupted"
    finally:
        watcher.stop()
        load.stop()
        if completed:
            load.wait(timeout=config.timeout + 5)
        deployer.close()
    postmortem_path: Path | None = None
    try:
        if watcher.incident is not None:
            from querywatch.incidents.postmortem import write_postmortem

            postmortem_path = options.workdir / POSTMORTEM_FILE.format(incident=watcher.incident.id)
            write_postmortem(store, watcher.incident.id, postmortem_path)
            watcher.incident = load_incident(store, watcher.incident.id) or watcher.incident
    finally:
        store.close()
    records = list(load.records)
    summary = summarize(
        records,
        bad_deploy.switched_at if bad_deploy else float("inf"),
        rollback.switched_at if rollback else None,
        options.slo_ms,
        bad_release=options.release,
    )
    progress.phase = "done" if completed else "interrupted"
    return DemoReport(
        options,
        seeded.shape,
        run_started,
        bad_deploy,
        rollback,
        summary,
        truth,
        records,
        completed,
        detected_at=watcher.detected_at,
        incident=watcher.incident,
        alerts=list(progress.alerts),
        monitor_errors=list(watcher.errors),
        rollback_by=rollback_by,
        recovered=watcher.recovered,
        recovered_at=watcher.recovered_at,
        postmortem_path=postmortem_path,
        steps=list(progress.steps),
        gate=gate,
        canary=watcher.canary,
        promoted=watcher.promoted,
    )


def _wait(stop: threading.Event, until_monotonic: float) -> bool:
    """Sleep until the deadline; True when asked to stop first."""
    return stop.wait(max(0.0, until_monotonic - time.monotonic()))
