"""The demo's agent: the monitor, the responder and the canary analysis, every second.

The same :class:`querywatch.monitor.Monitor` as `querywatch watch` runs over the demo's store,
with a responder configured as ``rollback_auto = true`` would be. The responder's rollback action
is the demo's deployer (a real deploy tool would be a command or a webhook); its runbook has the
shop's cache flush, run as a separate process. While a canary runs, each pass first asks the
canary analysis (:mod:`querywatch.demo.canary`) and acts on its verdict.
"""

from __future__ import annotations

import shlex
import sys
import threading
import time
from pathlib import Path
from typing import Any

from querywatch.demo.canary import CANARY_AGENT, CanaryRun, abort_data, abort_message
from querywatch.demo.deployer import Deploy, Deployer
from querywatch.demo.report import DemoOptions, DemoProgress, iso
from querywatch.demo.shop.db import explain_target
from querywatch.demo.shop.maintenance import SHOP_ENV
from querywatch.detect.policy import Policy
from querywatch.errors import QuerywatchError
from querywatch.incidents.model import Incident
from querywatch.incidents.repository import load_incident
from querywatch.monitor import Monitor
from querywatch.respond.actions import ActionContext, CallableAction, CommandAction
from querywatch.respond.alerts import Alert
from querywatch.respond.canary_abort import detections_of
from querywatch.respond.notifier import Notifier
from querywatch.respond.responder import Responder
from querywatch.respond.runbook import RunbookStep
from querywatch.respond.settings import RollbackSettings
from querywatch.store import open_store
from querywatch.store.base import Store

#: How often the demo's monitor looks at the store (the shop flushes capture every second).
CHECK_EVERY_S = 1.0

#: The demo's environment on deploy markers, and the responder's.
ENVIRONMENT = "demo"

#: Seconds after the rollback before recovery is verified (a real agent waits a minute).
RECOVERY_CHECK_S = 12.0

#: The name of the runbook step the demo runs after the rollback.
CACHE_FLUSH = "cache-flush"


class _ProgressSink:
    """Alerts go to the live view (the CLI prints them the moment they fire)."""

    name = "the demo's terminal"

    def __init__(self, progress: DemoProgress) -> None:
        self.progress = progress

    def send(self, alert: Alert) -> None:
        self.progress.alerts.append(alert)


class Watcher:
    """The monitor, responder and canary analysis, run every second while the load runs."""

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
        self.canary: CanaryRun | None = None  # set by the run when the canary takes traffic
        self.promoted: Deploy | None = None
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
        """The loop is closed: recovery verified (or not), a canary promoted, or nothing left
        to wait for."""
        return self.recovered is not None or self.promoted is not None or self._paused.is_set()

    def _roll_back(self, context: ActionContext) -> str:
        canary = self.canary if self.canary is not None and self.canary.running else None
        deploy = self.deployer.rollback()  # a running canary: weight 0 (if not yet), stopped
        if canary is not None:
            canary.aborted_at = deploy.switched_at
            canary.aborted_by = canary.aborted_by or "the regression detector"
        self.rollback = deploy
        self.rolled_back.set()
        if canary is not None:
            return (
                f"canary {context.version} stopped; {deploy.version} ({deploy.commit}) serves "
                f"every user, the canary's share at 0 since {iso(deploy.switched_at)}"
            )
        return (
            f"{deploy.version} ({deploy.commit}) took traffic at "
            f"{iso(deploy.switched_at)}, {context.version} stopped"
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
        responder = self._responder(store, policy, notifier)
        monitor = Monitor(
            store,
            policy=policy,
            notifier=notifier,
            health=health,
            repo_root=Path.cwd(),
            environment=ENVIRONMENT,
            slo_ms=self.options.slo_ms,
            responder=responder,
            # plans of the culprits now against before the deploy, findings and index advice
            explain_target=explain_target(self.options.shop_location),
        )
        try:
            while not self._stop.wait(CHECK_EVERY_S):
                # The canary first: its verdict decides whether users keep meeting it.
                self._judge_canary(store, monitor, responder)
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

    # -- the canary -------------------------------------------------------------------------------

    def _judge_canary(self, store: Store, monitor: Monitor, responder: Responder) -> None:
        run = self.canary
        if run is None or not run.running:
            return
        now = time.time()
        try:
            verdict = run.judge(store, now)
            if verdict.status == "pass":
                self.promoted = run.advance(self.deployer, now) or self.promoted
            elif run.abort_due:  # canary_fail_threshold failing verdicts in a row
                self._abort(store, monitor, responder, run, now)
        except Exception as exc:  # the demo goes on; the summary says what failed
            self.errors.append(f"canary analysis: {type(exc).__name__}: {exc}")
        finally:
            self.progress.canary = run.describe()

    def _abort(
        self, store: Store, monitor: Monitor, responder: Responder, run: CanaryRun, now: float
    ) -> None:
        """Weight 0 first (no user meets the canary from now on), then the incident, its alert,
        the verdict on its timeline, and the configured rollback path."""
        from querywatch.detect.attribution import attribute
        from querywatch.incidents.impact import impact_between
        from querywatch.incidents.service import open_incident, record_action

        self.deployer.set_weight(0)
        run.aborted_at = self.deployer.router.zero_weight_at or time.time()
        run.aborted_by = CANARY_AGENT
        run.failed = run.verdict
        assert run.failed is not None
        marker = store.latest_deploy(ENVIRONMENT)
        deploy_id = marker.id if marker is not None and marker.version == run.release else None
        detections = detections_of(run.failed, deploy_id, now)
        culprits = attribute(store, detections, repo_root=Path.cwd(), environment=ENVIRONMENT)
        impact = impact_between(store, run.deploy.switched_at, now, self.options.slo_ms)
        incident = open_incident(store, detections, culprits, None, impact, deploy_id, now)
        users = run.users(list(self.progress.records), self.options.slo_ms)
        incident = record_action(
            store,
            incident.id,
            abort_message(run, users),
            by=CANARY_AGENT,
            at=run.aborted_at,
            data=abort_data(run, users, self.options.slo_ms),
        )
        run.incident = incident.id
        self.incident = incident
        if monitor.notifier is not None:
            from querywatch.incidents.service import record_alert
            from querywatch.respond.alerts import alert_for_incident

            if monitor.notifier.notify(alert_for_incident(incident)):
                self.detected_at = self.detected_at or time.time()
            for delivery in monitor.notifier.take_deliveries():
                record_alert(store, incident.id, delivery.message, at=now, data=delivery.data)
        try:  # the rollback path as for any incident: guards, action, runbook, recovery check
            responder.rollback(incident.id, by=CANARY_AGENT, now=time.time())
        except QuerywatchError as exc:  # a guard said no (it is on the timeline): end it here
            self.errors.append(f"canary rollback: {exc}")
            if self.deployer.canary is not None:
                self.rollback = self.deployer.rollback()
                self.rolled_back.set()
        self.incident = load_incident(store, incident.id) or incident
