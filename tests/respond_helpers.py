"""Shared by the rollback and runbook tests: a shop's traffic, a bad deploy, an incident.

The traffic is synthetic but shaped like the report: four point queries with log-normal per-call
latency and window-to-window noise, one route; the bad release makes the orders query ~30x
slower. It is written into a real store, so the regression detector (the evidence re-check) and
the recovery check read real windows.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from querywatch import deploys
from querywatch.detect.model import Culprit, Detection, PhaseStats
from querywatch.incidents import service
from querywatch.incidents.model import Incident, TimelineEvent
from querywatch.records import CallSite, DeployMarker, RequestWindow, StatementWindow
from querywatch.respond.alerts import Alert
from querywatch.sketch import LatencySketch
from querywatch.sql import fingerprint
from querywatch.store.base import Store

T0 = 1_764_000_000  # a window boundary (2025-11-24 16:00 UTC)
DEPLOY_AT = T0 + 1800  # v2 starts after 30 minutes of v1 traffic
FINISHED_AT = DEPLOY_AT + 5
NOW = DEPLOY_AT + 125  # twelve windows of v2 traffic
ROUTE = "GET /orders"

ORDERS_SQL = "SELECT id, total FROM orders WHERE customer_id = 42"
QUERIES = {  # sql: (calls per window, mean ms)
    ORDERS_SQL: (60, 2.0),
    "SELECT * FROM products WHERE id = 7": (80, 0.5),
    "SELECT * FROM cart_items WHERE cart_id = 3": (40, 0.8),
    "INSERT INTO events (kind, at) VALUES ('view', now())": (30, 0.6),
}
ORDERS_FP = fingerprint(ORDERS_SQL, "postgres")
SLOW = 30.0  # how much slower the bad release makes the orders query


def steady(ws: int) -> float:
    return 1.0


def bad_from(start: float, until: float = float("inf")) -> Callable[[int], float]:
    """The orders query's latency factor: 30x from the window holding ``start`` until ``until``."""
    return lambda ws: SLOW if start - 10 < ws < until else 1.0


def write_traffic(
    store: Store,
    start: float,
    end: float,
    orders_factor: Callable[[int], float] = steady,
    *,
    seed: int = 7,
) -> None:
    """Statement and request windows for every 10 s bucket in [start, end)."""
    rng = random.Random(seed + int(start))
    statements: list[StatementWindow] = []
    requests: list[RequestWindow] = []
    ws = int(start)
    while ws < end:
        orders_ms = 0.0
        for sql, (rate, mean) in QUERIES.items():
            factor = orders_factor(ws) if sql == ORDERS_SQL else 1.0
            n = max(1, round(rate * rng.uniform(0.8, 1.2)))
            noise = rng.uniform(0.8, 1.2)
            lat = [mean * factor * noise * rng.lognormvariate(0, 0.25) for _ in range(n)]
            sketch = LatencySketch()
            for v in lat:
                sketch.add(v)
            fp = fingerprint(sql, "postgres")
            statements.append(
                StatementWindow(
                    fp.id,
                    fp.normalized,
                    ws,
                    n,
                    sum(lat),
                    max(lat),
                    source="app",
                    min_ms=min(lat),
                    sketch=sketch,
                )
            )
            if sql == ORDERS_SQL:
                orders_ms = sum(lat)
        n_req = 50
        total = 20.0 * n_req + orders_ms
        requests.append(RequestWindow(ROUTE, ws, n_req, 0, total, total / n_req * 3, orders_ms, 60))
        ws += 10
    store.write_windows(statements)
    store.write_requests(requests)


def ship_bad_release(store: Store, *, migration: str | None = None) -> DeployMarker:
    """v1 deployed long ago, v2 (the bad one) at DEPLOY_AT, with traffic to NOW."""
    deploys.start_deploy(store, "v1", commit="aaaa1111", at=T0 - 7200, deploy_id="d1")
    deploys.finish_deploy(store, deploy_id="d1", at=T0 - 7190)
    deploys.start_deploy(store, "v2", commit="bbbb2222", at=DEPLOY_AT, deploy_id="d2")
    marker = deploys.finish_deploy(store, deploy_id="d2", at=FINISHED_AT)
    if migration is not None:
        marker = replace(marker, migration=migration)
        store.record_deploy(marker)
    write_traffic(store, T0, NOW, bad_from(FINISHED_AT))
    return marker


def detection(deploy_id: str = "d2", confidence: float = 0.99, at: float = NOW) -> Detection:
    return Detection(
        kind="deploy_regression",
        detected_at=at,
        confidence=confidence,
        summary=f"the orders query got 30x slower after deploy {deploy_id}",
        fingerprint=ORDERS_FP.id,
        normalized=ORDERS_FP.normalized,
        route=None,
        deploy_id=deploy_id,
        before=PhaseStats(3600, 6.0, 2.0, 2.5, 12.0),
        after=PhaseStats(360, 6.0, 60.0, 80.0, 360.0),
        added_db_ms_per_s=348.0,
        p_value=1e-12,
        evidence={"routes": [{"route": ROUTE, "ratio": 3.0}]},
    )


def culprit(deploy_id: str = "d2") -> Culprit:
    return Culprit(
        fingerprint=ORDERS_FP.id,
        normalized=ORDERS_FP.normalized,
        added_db_ms_per_s=348.0,
        first_seen_deploy=deploy_id,
        call_sites=(CallSite("shop/orders.py", 88, "order_history"),),
        detection_kinds=("deploy_regression",),
    )


def open_incident(
    store: Store, deploy_id: str | None = "d2", confidence: float = 0.99, at: float = NOW
) -> Incident:
    return service.open_incident(
        store,
        [detection(deploy_id or "none", confidence, at)],
        [culprit(deploy_id or "none")],
        None,
        None,
        deploy_id,
        at,
    )


def actions(incident: Incident, action: str | None = None) -> list[TimelineEvent]:
    """The responder's events on the timeline, optionally of one action."""
    return [
        e
        for e in incident.timeline
        if e.kind == "action" and (action is None or e.data.get("action") == action)
    ]


def script(path: Path, code: str) -> str:
    """A command template running ``code`` with this Python (arguments follow in argv)."""
    path.write_text(code)
    return f"{sys.executable} {path}"


WRITE_ARGS = "import json, sys\nopen(sys.argv[1], 'a').write(json.dumps(sys.argv[2:]) + '\\n')\n"


def written(path: Path) -> list[list[str]]:
    """Every argument vector a WRITE_ARGS script recorded, in order."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


@dataclass
class RecordingSink:
    """An alert sink that keeps what it is sent (a real sink: the Notifier calls ``send``)."""

    name: str = "recorder"
    alerts: list[Alert] = field(default_factory=list)

    def send(self, alert: Alert) -> None:
        self.alerts.append(alert)
