"""The outage, replayed: seed, serve v1 under load, deploy v2, and let querywatch close the loop.

This module only orchestrates the demo's parts (seed, deployer, load, summary), the capture that
runs inside the shop's processes, and the monitor and responder that watch the store; the CLI
draws it. querywatch does the rest by itself, through the same code as `querywatch watch`: it
detects and attributes the regression, re-checks the evidence, rolls v2 back through the guarded
path (the action is the demo's deployer), runs the cache-flush runbook step, verifies recovery
against the baseline, resolves the incident and writes the postmortem into the work directory.
If nothing fires by the end of the bad phase, the demo rolls back by hand and says so.
"""

from __future__ import annotations

import shlex
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from querywatch.demo.deployer import Deploy, Deployer
from querywatch.demo.gate import check_release
from querywatch.demo.ground_truth import ReleaseQuery, changed_queries
from querywatch.demo.load import LoadConfig, LoadGenerator, RequestRecord
from querywatch.demo.shop.db import explain_target
from querywatch.demo.shop.maintenance import SHOP_ENV
from querywatch.demo.shop.releases import BAD, GOOD, load_release
from querywatch.demo.shop.seed import Shape, seed
from querywatch.demo.summary import Summary, percentile, summarize
from querywatch.detect.policy import Policy
from querywatch.errors import ConfigError
from querywatch.gate import CheckReport
from querywatch.incidents.model import Incident, TimelineEvent
from querywatch.incidents.repository import load_incident
from querywatch.monitor import Monitor
from querywatch.records import DeployMarker
from querywatch.respond.actions import ActionContext, CallableAction, CommandAction
from querywatch.respond.alerts import Alert
from querywatch.respond.notifier import Notifier
from querywatch.respond.responder import Responder
from querywatch.respond.runbook import RunbookStep
from querywatch.respond.settings import RollbackSettings
from querywatch.store import open_store

#: How often the demo's monitor looks at the store (the shop flushes capture every second).
CHECK_EVERY_S = 1.0

#: Shares of the load's duration: before the bad deploy, on the bad release (at most: the
#: responder rolls back as soon as the evidence is strong enough), after the rollback. The
#: monitor needs 20 s of history.
PHASES = (0.3, 0.5, 0.2)

#: The demo's environment on deploy markers, and the responder's.
ENVIRONMENT = "demo"

#: Seconds after the rollback before recovery is verified (a real agent waits a minute), and how
#: long the load goes on past the after-phase for the verdict to come in.
RECOVERY_CHECK_S = 12.0
RECOVERY_GRACE_S = 40.0

#: The name of the runbook step the demo runs after the rollback, and the postmortem's file name
#: (one per incident: the demo's store, and so its incidents, outlive a run).
CACHE_FLUSH = "cache-flush"
POSTMORTEM_FILE = "postmortem-{incident}.md"


@dataclass(frozen=True)
class DemoOptions:
    workdir: Path
    dsn: str | None = None
    scale: int | None = None
    duration: float = 100.0
    port: int | None = None
    rate: float = 30.0
    users: int = 300
    timeout: float = 3.0
    slo_ms: float = 1000.0
    #: What the replay deploys after v1 (``v1.1`` replays a harmless deploy), the load's seed and
    #: its burstiness: knobs for the detection benchmark's benign and noisy replays.
    release: str = BAD
    seed: int = 7
    burst_factor: float = 1.0

    @property
    def shop_location(self) -> str:
        return self.dsn or str(self.workdir / "shop.sqlite3")

    @property
    def store_path(self) -> Path:
        return self.workdir / "querywatch.sqlite3"


@dataclass
class DemoProgress:
    """What the live view shows; updated by the run as it goes."""

    phase: str = "starting"
    release: str | None = None
    started_at: float = field(default_factory=time.time)
    records: list[RequestRecord] = field(default_factory=list)
    deploys: list[Deploy] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    steps: list[TimelineEvent] = field(default_factory=list)  # what the responder did


@dataclass
class DemoReport:
    options: DemoOptions
    shape: Shape
    run_started_at: float
    bad: Deploy | None
    rollback: Deploy | None
    summary: Summary
    ground_truth: list[ReleaseQuery]
    records: list[RequestRecord]
    completed: bool
    detected_at: float | None = None
    incident: Incident | None = None
    alerts: list[Alert] = field(default_factory=list)
    monitor_errors: list[str] = field(default_factory=list)  # checks that failed, kept going
    rollback_by: str | None = None  # "querywatch" (the responder) or "demo" (nothing fired)
    recovered: bool | None = None  # the responder's verdict; None when it gave none
    recovered_at: float | None = None
    postmortem_path: Path | None = None
    steps: list[TimelineEvent] = field(default_factory=list)
    gate: dict[str, CheckReport] = field(default_factory=dict)  # the CI gate, per release

    @property
    def detect_after_s(self) -> float | None:
        """From the bad release taking traffic to the first alert."""
        if self.detected_at is None or self.bad is None:
            return None
        return self.detected_at - self.bad.switched_at

    @property
    def rollback_completed_at(self) -> float | None:
        """When the rollback's deploy finished (the previous release serving, v2 stopped)."""
        return self.rollback.finished_at if self.rollback else None

    @property
    def mitigate_after_s(self) -> float | None:
        """From the bad release taking traffic to the rollback complete."""
        if self.rollback is None or self.bad is None:
            return None
        return self.rollback.finished_at - self.bad.switched_at

    def page_latency(self, page: str, phase: str) -> float | None:
        """Median latency of one page in one phase (before / during / after), in ms."""
        bounds = self._bounds()
        lo, hi = bounds[phase]
        values = [
            r.latency_ms
            for r in self.records
            if r.page == page and lo <= r.scheduled_at < hi and not r.failed
        ]
        return percentile(values, 50)

    def _bounds(self) -> dict[str, tuple[float, float]]:
        bad = self.bad.switched_at if self.bad else float("inf")
        back = self.rollback.switched_at if self.rollback else float("inf")
        return {"before": (0.0, bad), "during": (bad, back), "after": (back, float("inf"))}

    def as_json(self) -> dict[str, Any]:
        s = self.summary
        pages = sorted({r.page for r in self.records})
        return {
            "completed": self.completed,
            "bad_deploy_at": _iso(self.bad.switched_at) if self.bad else None,
            "rollback_at": _iso(self.rollback.switched_at) if self.rollback else None,
            "requests": s.before.requests + s.during.requests + s.after.requests,
            "error_rate": _rate(s),
            "latency_ms": {
                phase: {"p50": _r(stats.p50_ms), "p95": _r(stats.p95_ms)}
                for phase, stats in (("before", s.before), ("during", s.during), ("after", s.after))
            },
            "page_p50_ms": {
                page: {ph: _r(self.page_latency(page, ph)) for ph in ("before", "during", "after")}
                for page in pages
            },
            "slo_ms": s.slo_ms,
            "users_total": s.users_total,
            "users_affected": s.users_affected,
            "users_affected_pct": round(s.users_affected_pct, 2),
            "ground_truth": [q.as_dict() for q in self.ground_truth],
            "detected_at": _iso(self.detected_at) if self.detected_at else None,
            "detect_after_s": _r(self.detect_after_s),
            "rollback_completed_at": _iso(self.rollback_completed_at)
            if self.rollback_completed_at
            else None,
            "rollback_by": self.rollback_by,
            "mitigate_after_s": _r(self.mitigate_after_s),
            "recovered": self.recovered,
            "recovered_at": _iso(self.recovered_at) if self.recovered_at else None,
            "postmortem_path": str(self.postmortem_path) if self.postmortem_path else None,
            "gate": {
                version: {
                    "exit_code": report.exit_code,
                    "passed": report.exit_code == 0,
                    "findings": [f.as_dict() for f in report.failing],
                }
                for version, report in self.gate.items()
            },
            "incident": self.incident.id if self.incident else None,
            "incident_status": self.incident.status if self.incident else None,
            "culprits": [
                {
                    "fingerprint": c.fingerprint,
                    "normalized": c.normalized,
                    "call_site": f"{c.call_sites[0].path}:{c.call_sites[0].line}"
                    if c.call_sites
                    else None,
                    "function": c.call_sites[0].function if c.call_sites else None,
                    "added_db_ms_per_s": round(c.added_db_ms_per_s, 1),
                    "first_seen_deploy": c.first_seen_deploy,
                }
                for c in (self.incident.culprits if self.incident else [])
            ],
            "scale": self.shape.orders,
            "database": "postgresql" if self.options.dsn else "sqlite",
        }


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _rate(s: Summary) -> float:
    total = s.before.requests + s.during.requests + s.after.requests
    errors = s.before.errors + s.during.errors + s.after.errors
    return round(errors / total, 4) if total else 0.0


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
        progress.release = deploy.version
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
    watcher = _Watcher(options, progress, deployer)
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
            bad_deploy = deployer.deploy(options.release)
            progress.phase = f"{options.release} serving"
            # querywatch rolls back by itself once the evidence is strong enough; if it has not
            # by the end of the bad phase, the demo does (and the summary says so).
            deadline = time.monotonic() + bad_for
            while (
                not stop.is_set()
                and time.monotonic() < deadline
                and not watcher.rolled_back.wait(0.2)
            ):
                pass
            if watcher.rollback is not None:
                rollback, rollback_by = watcher.rollback, "querywatch"
            elif not stop.is_set():
                watcher.pause()  # no automatic rollback racing the demo's own
                progress.phase = f"rolling back to {GOOD} (nothing fired)"
                rollback, rollback_by = deployer.rollback(), "demo"
            if rollback is not None:
                progress.phase = f"{GOOD} again (after rollback)"
                after_until = time.monotonic() + after
                grace_until = after_until + RECOVERY_GRACE_S
                while not stop.is_set() and time.monotonic() < grace_until:
                    if time.monotonic() >= after_until and watcher.settled():
                        break
                    stop.wait(0.2)
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
    )


class _ProgressSink:
    """Alerts go to the live view (the CLI prints them the moment they fire)."""

    name = "the demo's terminal"

    def __init__(self, progress: DemoProgress) -> None:
        self.progress = progress

    def send(self, alert: Alert) -> None:
        self.progress.alerts.append(alert)


class _Watcher:
    """The monitor and responder, run every second over the demo's store while the load runs.

    The responder's rollback action is the demo's deployer (a real deploy tool would be a
    command or a webhook); its runbook has the shop's cache flush, run as a separate process.
    """

    def __init__(self, options: DemoOptions, progress: DemoProgress, deployer: Deployer) -> None:
        self.options = options
        self.progress = progress
        self.deployer = deployer
        self.rolled_back = threading.Event()
        self.rollback: Deploy | None = None
        self.detected_at: float | None = None
        self.incident: Incident | None = None
        self.recovered: bool | None = None
        self.recovered_at: float | None = None
        self.errors: list[str] = []
        self._paused = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-monitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def pause(self) -> None:
        """Stop acting (the demo rolls back by hand): no check runs after this returns."""
        self._paused.set()
        self._stop.set()
        self._thread.join(timeout=30)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def settled(self) -> bool:
        """The loop is closed: recovery verified (or not) and nothing left to wait for."""
        return self.recovered is not None or self._paused.is_set()

    def _roll_back(self, context: ActionContext) -> str:
        deploy = self.deployer.rollback()
        self.rollback = deploy
        self.rolled_back.set()
        return (
            f"{deploy.version} ({deploy.commit}) took traffic at "
            f"{_iso(deploy.switched_at)}, {context.version} stopped"
        )

    def _responder(self, store: Any, policy: Policy, notifier: Notifier) -> Responder:
        location = self.options.shop_location
        flush = CommandAction(
            f"{shlex.quote(sys.executable)} -m querywatch.demo.shop.maintenance flush-cache",
            setting=f"[runbook.{CACHE_FLUSH}] command",
            env={SHOP_ENV: location},  # a DSN's password stays off the timeline
        )
        return Responder(
            store,
            action=CallableAction(self._roll_back, label="the demo's deployer: roll back"),
            settings=RollbackSettings(
                environment=ENVIRONMENT, auto=True, recovery_check_s=RECOVERY_CHECK_S
            ),
            runbook={
                CACHE_FLUSH: RunbookStep(
                    CACHE_FLUSH,
                    flush,
                    after_rollback=True,
                    timeout_s=60.0,
                    description="the report's database cache flush",
                )
            },
            notifier=notifier,
            policy=policy,
            on_event=self.progress.steps.append,
        )

    def _run(self) -> None:
        from querywatch.detect.health import health_snapshot, sqlite_health

        dsn = self.options.dsn
        health = (lambda: health_snapshot(dsn)) if dsn else sqlite_health
        store = open_store(self.options.store_path)
        # The demo's store has watched the shop since it started, so 20 s of history before
        # the deploy is enough to tell new queries from old ones (a real agent waits 60 s).
        policy = Policy(min_baseline_chunks=2)
        notifier = Notifier([_ProgressSink(self.progress)])
        monitor = Monitor(
            store,
            policy=policy,
            notifier=notifier,
            health=health,
            repo_root=Path.cwd(),
            environment=ENVIRONMENT,
            slo_ms=self.options.slo_ms,
            responder=self._responder(store, policy, notifier),
            # plans of the culprits now against before the deploy, findings and index advice
            explain_target=explain_target(self.options.shop_location),
        )
        try:
            while not self._stop.wait(CHECK_EVERY_S):
                try:
                    result = monitor.check()
                except Exception as exc:  # the demo goes on; the summary says what failed
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                if result.incident is not None:
                    self.incident = result.incident
                    if self.detected_at is None and result.alerted:
                        self.detected_at = time.time()
                for recovery in result.recoveries:
                    self.recovered = recovery.recovered
                    self.recovered_at = time.time()
                    self.incident = load_incident(store, recovery.incident) or self.incident
        finally:
            store.close()


def _wait(stop: threading.Event, until_monotonic: float) -> bool:
    """Sleep until the deadline; True when asked to stop first."""
    return stop.wait(max(0.0, until_monotonic - time.monotonic()))
