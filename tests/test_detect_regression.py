"""Regression detection over real stores: synthetic-but-realistic windows, then real captures.

Synthetic windows model a small shop: a few hot point queries with per-call log-normal latency
and ±30% window-to-window noise, plus an always-slow report. They are written into a real SQLite
store (and the PostgreSQL store for the core cases) and the detectors read them back. The last two
tests capture real statements: in-app capture of a sqlite3 database and pg_stat_statements of the
test PostgreSQL, each with a deploy that ships a non-sargable query and drops an index.
"""

from __future__ import annotations

import random
import sqlite3
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter

import psycopg
import pytest

import querywatch
from querywatch.capture import aggregate
from querywatch.capture.pg_stat_statements import PgStatStatementsSource
from querywatch.detect.model import Detection
from querywatch.detect.policy import Policy
from querywatch.detect.regression import Detector, detect
from querywatch.records import DeployMarker, StatementWindow
from querywatch.sketch import LatencySketch
from querywatch.sql import fingerprint
from querywatch.store import SqlStore, open_store

T0 = 1_700_000_000  # a window boundary
DEPLOY = DeployMarker("deploy-v2", "v2", "c0ffee1", "prod", T0 + 1803.0, T0 + 1805.0, "ci", "v1")
AFTER = T0 + 1810  # the first whole window with v2 taking all the traffic
NOW = AFTER + 25.0  # two whole windows after the deploy and half of a third


@dataclass(frozen=True)
class Query:
    sql: str
    calls: int  # per 10 s window
    mean_ms: float
    p95_spread: float = 0.25  # sigma of the per-call log-normal

    @property
    def fp(self) -> str:
        return fingerprint(self.sql, "postgres").id


ORDERS = Query("SELECT id, total FROM orders WHERE customer_id = 42", 60, 0.1)
PRODUCT = Query("SELECT * FROM products WHERE id = 7", 80, 0.05)
CART = Query("SELECT * FROM cart_items WHERE cart_id = 3", 40, 0.2)
EVENT = Query("INSERT INTO events (kind, at) VALUES ('view', now())", 30, 0.3)
REPORT = Query(
    "SELECT count(*) FROM orders o JOIN order_items i ON i.order_id = o.id "
    "WHERE o.day = '2024-01-01'",
    3,
    400.0,
)
BASE = (ORDERS, PRODUCT, CART, EVENT, REPORT)
NON_SARGABLE = Query(
    "SELECT id, total FROM orders WHERE CAST(customer_id AS TEXT) = '42'", 60, 18.0
)

Spec = Callable[[int], list[tuple[Query, float, float]]]
"""Window start -> the queries running in it, each with a latency factor and a rate factor."""


def steady(ws: int) -> list[tuple[Query, float, float]]:
    return [(q, 1.0, 1.0) for q in BASE]


def after_deploy(change: Callable[[Query], tuple[Query, float, float] | None]) -> Spec:
    """The base workload before the deploy; from the rollout window on, ``change`` each query."""

    def spec(ws: int) -> list[tuple[Query, float, float]]:
        if ws < DEPLOY.started_at - 10:
            return steady(ws)
        return [c for q in BASE if (c := change(q)) is not None]

    return spec


def populate(
    store: SqlStore,
    spec: Spec,
    *,
    start: int = T0,
    now: float = NOW,
    sketches: bool = True,
    gaps: Callable[[int], bool] = lambda ws: False,
    seed: int = 1,
) -> None:
    """Write windows from ``start`` up to the window holding ``now`` (that one partly filled)."""
    rng = random.Random(seed)
    windows: list[StatementWindow] = []
    ws = start
    while ws <= now:
        fraction = min(1.0, (now - ws) / 10)
        if not gaps(ws):
            for q, factor, rate in spec(ws):
                n = max(1, round(q.calls * rate * fraction * rng.uniform(0.8, 1.2)))
                noise = rng.uniform(0.7, 1.3)  # ordinary window-to-window noise
                lat = [
                    q.mean_ms * factor * noise * rng.lognormvariate(0, q.p95_spread)
                    for _ in range(n)
                ]
                sketch = None
                if sketches:
                    sketch = LatencySketch()
                    for v in lat:
                        sketch.add(v)
                fp = fingerprint(q.sql, "postgres")
                windows.append(
                    StatementWindow(
                        fp.id,
                        fp.normalized,
                        ws,
                        n,
                        sum(lat),
                        max(lat),
                        source="app" if sketches else "pg_stat_statements",
                        min_ms=min(lat),
                        sketch=sketch,
                    )
                )
        ws += 10
    store.write_windows(windows)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = open_store(tmp_path / "qw.sqlite3")
    yield s
    s.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    location = (
        str(request.getfixturevalue("pg_dsn"))
        if request.param == "postgres"
        else tmp_path / "qw.sqlite3"
    )
    s = open_store(location)
    yield s
    s.close()


def with_deploy(store: SqlStore, spec: Spec, **kw: object) -> list[Detection]:
    populate(store, spec, **kw)  # type: ignore[arg-type]
    store.record_deploy(DEPLOY)
    return detect(store, NOW)


def kinds(found: list[Detection]) -> list[tuple[str, str | None]]:
    return [(d.kind, d.fingerprint) for d in found]


# -- after a deploy ------------------------------------------------------------------------------


def test_benign_deploy_with_ordinary_noise_is_silent(any_store: SqlStore) -> None:
    found = with_deploy(any_store, after_deploy(lambda q: (q, 1.0, 1.0)))
    assert found == []


def test_query_slowed_by_the_deploy_is_named_with_its_cost(any_store: SqlStore) -> None:
    slow = after_deploy(lambda q: (q, 180.0 if q is ORDERS else 1.0, 1.0))
    found = with_deploy(any_store, slow)
    assert kinds(found) == [("deploy_regression", ORDERS.fp)]
    d = found[0]
    assert d.deploy_id == DEPLOY.id and d.confidence >= 0.8
    assert d.p_value is not None and d.p_value < 1e-6
    assert d.before is not None and d.after is not None
    assert d.before.mean_ms == pytest.approx(0.1, rel=0.3)
    assert d.after.mean_ms == pytest.approx(18.0, rel=0.3)
    assert d.after.calls_per_s == pytest.approx(6.0, rel=0.25)
    # 6 calls/s, each ~18 ms slower: ~108 ms of database time per second
    assert d.added_db_ms_per_s == pytest.approx(108, rel=0.35)
    assert d.summary.startswith("select id, total from orders where customer_id = ? got ")
    assert (
        "slower after deploy v2 (0.1" in d.summary and "ms of database time per second" in d.summary
    )
    assert d.evidence["samples"] == "per-call" and d.evidence["superiority"] > 0.95


def test_everything_slower_together_is_load_not_a_query(any_store: SqlStore) -> None:
    found = with_deploy(any_store, after_deploy(lambda q: (q, 2.5, 1.0)))
    assert kinds(found) == [("load", None)]
    d = found[0]
    assert d.deploy_id is None and d.evidence["deploy_id"] == DEPLOY.id
    assert "load or the host, not one query" in d.summary
    assert d.evidence["common_ratio"] == pytest.approx(2.5, rel=0.3)
    assert d.confidence >= 0.8


def test_a_query_far_out_of_a_load_slowdown_is_still_blamed(store: SqlStore) -> None:
    found = with_deploy(store, after_deploy(lambda q: (q, 80.0 if q is ORDERS else 2.0, 1.0)))
    assert sorted(kinds(found), key=str) == [("deploy_regression", ORDERS.fp), ("load", None)]
    blamed = next(d for d in found if d.kind == "deploy_regression")
    assert blamed.evidence["control_ratio"] == pytest.approx(2.0, rel=0.3)
    assert "while the other queries slowed" in blamed.summary


def test_a_query_slowed_about_as_much_as_the_load_is_not_blamed(store: SqlStore) -> None:
    found = with_deploy(store, after_deploy(lambda q: (q, 3.0 if q is ORDERS else 2.0, 1.0)))
    assert kinds(found) == [("load", None)]


def test_new_expensive_fingerprint_replacing_a_fast_one(store: SqlStore) -> None:
    cheap_new = Query("SELECT enabled FROM feature_flags WHERE name = 'x'", 50, 0.05)

    def change(q: Query) -> tuple[Query, float, float] | None:
        return (NON_SARGABLE, 1.0, 1.0) if q is ORDERS else (q, 1.0, 1.0)

    def spec(ws: int) -> list[tuple[Query, float, float]]:
        rows = after_deploy(change)(ws)
        return [*rows, (cheap_new, 1.0, 1.0)] if ws >= DEPLOY.started_at - 10 else rows

    found = with_deploy(store, spec)
    assert kinds(found) == [("new_fingerprint", NON_SARGABLE.fp)]
    d = found[0]
    assert d.deploy_id == DEPLOY.id and d.confidence >= 0.8
    assert d.evidence["replaced_fingerprint"] == ORDERS.fp
    assert d.evidence["share_of_db_time"] > 0.2
    assert "is new with deploy v2" in d.summary and "replacing a query that took 0.1" in d.summary
    assert d.before is not None and d.before.mean_ms == pytest.approx(0.1, rel=0.3)


def test_rewritten_query_costing_the_same_is_not_new(store: SqlStore) -> None:
    rewritten = Query("SELECT id, total, currency FROM orders WHERE customer_id = 42", 60, 0.1)
    found = with_deploy(store, after_deploy(lambda q: (rewritten if q is ORDERS else q, 1.0, 1.0)))
    assert found == []


def test_rare_fingerprint_is_not_new(store: SqlStore) -> None:
    # a nightly job seen two hours earlier (outside the baseline) runs again after the deploy
    nightly = Query("SELECT * FROM orders WHERE day < '2024-01-01' ORDER BY id", 3, 900.0)
    populate(store, lambda ws: [(nightly, 1.0, 1.0)], start=T0 - 7200, now=T0 - 7190)

    def spec(ws: int) -> list[tuple[Query, float, float]]:
        extra = [(nightly, 1.0, 1.0)] if ws >= AFTER else []
        return steady(ws) + extra

    found = with_deploy(store, spec)
    assert found == []


def test_always_slow_query_is_not_blamed(store: SqlStore) -> None:
    heavy = Query(REPORT.sql, 25, 400.0)  # most of the database time, before and after
    spec: Spec = lambda ws: [(heavy, 1.0, 1.0), (ORDERS, 1.0, 1.0), (PRODUCT, 1.0, 1.0)]  # noqa: E731
    assert with_deploy(store, spec) == []
    assert detect(store, NOW + 600) == []  # nor later, without a deploy to compare with


def test_bursty_traffic_without_latency_change_is_silent(store: SqlStore) -> None:
    def spec(ws: int) -> list[tuple[Query, float, float]]:
        burst = 5.0 if (ws // 10) % 2 else 0.3  # call rates swing 15x between windows
        return [(q, 1.0, burst) for q in BASE]

    assert with_deploy(store, spec) == []
    assert Detector(store).detect(NOW + 300) == []


def test_gaps_in_the_data_are_silent(store: SqlStore) -> None:
    def gap(ws: int) -> bool:
        # the agent was down ten minutes before the deploy, and missed a window after it
        return T0 + 900 <= ws < T0 + 1500 or ws == AFTER + 10

    assert with_deploy(store, after_deploy(lambda q: (q, 1.0, 1.0)), gaps=gap) == []


def test_quiet_windows_and_rare_calls_are_not_anomalies(store: SqlStore) -> None:
    rare = Query("SELECT * FROM coupons WHERE code = 'x'", 1, 2.0, p95_spread=1.0)

    def spec(ws: int) -> list[tuple[Query, float, float]]:
        quiet = ws >= T0 + 1790  # the last minute: a tenth of the usual calls
        rows = [(q, 1.0, 0.1 if quiet else 1.0) for q in BASE]
        return [*rows, (rare, 20.0 if ws >= T0 + 1790 else 1.0, 1.0)]

    populate(store, spec, now=T0 + 1835)
    assert detect(store, T0 + 1835) == []


def test_deploy_too_fresh_is_not_judged_yet_then_is(store: SqlStore) -> None:
    spec = after_deploy(lambda q: (q, 180.0 if q is ORDERS else 1.0, 1.0))
    populate(store, spec, now=AFTER + 5)
    store.record_deploy(DEPLOY)
    assert detect(store, AFTER + 5) == []
    populate(store, spec, start=AFTER + 10, now=AFTER + 22, seed=2)
    assert kinds(detect(store, AFTER + 22)) == [("deploy_regression", ORDERS.fp)]


def test_pg_stat_statements_windows_are_judged_on_window_means(any_store: SqlStore) -> None:
    # no sketches: each window's mean is one sample, so confidence grows window by window
    spec = after_deploy(lambda q: (q, 50.0 if q is ORDERS else 1.0, 1.0))
    populate(any_store, spec, sketches=False, now=AFTER + 15)
    any_store.record_deploy(DEPLOY)
    early = detect(any_store, AFTER + 15)
    populate(any_store, spec, sketches=False, start=AFTER + 20, now=AFTER + 45, seed=2)
    found = detect(any_store, AFTER + 45)
    assert kinds(early) == kinds(found)
    assert early[0].confidence < 0.8 <= found[0].confidence
    assert kinds(found) == [("deploy_regression", ORDERS.fp)]
    assert found[0].evidence["samples"] == "per-window"
    assert found[0].before is not None and found[0].before.p95_ms is None


def test_pg_stat_statements_counter_reset_is_a_quiet_window(store: SqlStore) -> None:
    populate(store, after_deploy(lambda q: (q, 1.0, 1.0)), sketches=False, now=AFTER + 45)
    # a pg_stat_statements_reset(): the next delta holds only the few calls since the reset
    fp = fingerprint(ORDERS.sql, "postgres")
    store.write_windows(
        [StatementWindow(fp.id, fp.normalized, AFTER + 50, 1, 0.4, 0.4, source="pgss")]
    )
    store.record_deploy(DEPLOY)
    assert detect(store, AFTER + 55) == []


# -- without a deploy ----------------------------------------------------------------------------


def test_unannounced_rise_of_one_query(store: SqlStore) -> None:
    now = T0 + 1825.0

    def spec(ws: int) -> list[tuple[Query, float, float]]:
        late = ws >= T0 + 1800
        return [(q, 50.0 if late and q is ORDERS else 1.0, 1.0) for q in BASE]

    populate(store, spec, now=now)
    found = detect(store, now)
    assert kinds(found) == [("unannounced_regression", ORDERS.fp)]
    d = found[0]
    assert d.deploy_id is None and d.confidence >= 0.8
    assert "slower without a deploy" in d.summary
    # one window alone is not a change: persistence needs two
    assert detect(store, T0 + 1805.0) == []


def test_whole_database_slowing_without_deploy(store: SqlStore) -> None:
    now = T0 + 1825.0
    populate(store, lambda ws: [(q, 3.0 if ws >= T0 + 1800 else 1.0, 1.0) for q in BASE], now=now)
    found = detect(store, now)
    assert kinds(found) == [("unannounced_regression", None)]
    assert found[0].summary.startswith("The whole database slowed without a deploy")
    assert found[0].before is not None and found[0].after is not None
    assert found[0].after.db_ms_per_s > 2 * found[0].before.db_ms_per_s


def test_an_old_deploy_is_not_blamed_for_a_later_change(store: SqlStore) -> None:
    old = DeployMarker("deploy-v1", "v1", None, "prod", T0 - 100.0, T0 - 95.0)
    store.record_deploy(old)
    test_unannounced_rise_of_one_query(store)


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="min_latency_ratio"):
        Policy(min_latency_ratio=0.5)
    with pytest.raises(ValueError, match="max_p_value"):
        Policy(max_p_value=2)
    with pytest.raises(ValueError, match="must not be negative"):
        Policy(min_calls_after=-1)


# -- on really captured data ---------------------------------------------------------------------

ROWS = 100_000
BY_ID = "SELECT name FROM items WHERE id = {ph}"
BY_ID_CAST = "SELECT name FROM items WHERE CAST(id AS TEXT) = {ph}"
BY_NAME = "SELECT id FROM items WHERE name = {ph}"
CART_COUNT = "SELECT count(*) FROM carts WHERE item_id = {ph}"
# The test app makes 2 calls/s of each query; the default "adds at least 10 ms of database time
# per second" is sized for production traffic, so it is scaled down with the workload.
SMALL_APP = Policy(min_added_db_ms_per_s=1.0)
V1_WINDOWS = 8  # windows of v1 traffic before the deploy


def traffic(conn: object, ph: str, v2: bool, rng: random.Random) -> None:
    """One window of the app's traffic: v1 looks items up by id; v2 casts the id (non-sargable).

    v2's migration also dropped the index on name, so the by-name lookup (same SQL) scans.
    """
    run = getattr(conn, "execute")  # noqa: B009 - the sqlite proxy and psycopg both have it
    for _ in range(20):
        key = rng.randrange(ROWS)
        if v2:
            run(BY_ID_CAST.format(ph=ph), (str(key),)).fetchall()
        else:
            run(BY_ID.format(ph=ph), (key,)).fetchall()
        run(BY_NAME.format(ph=ph), (f"item {rng.randrange(ROWS)}",)).fetchall()
        run(CART_COUNT.format(ph=ph), (rng.randrange(100),)).fetchall()


def test_detects_the_non_sargable_query_captured_in_app_from_sqlite(
    tmp_path: Path, store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = sqlite3.connect(tmp_path / "app.db")
    raw.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
    raw.execute("CREATE INDEX items_name ON items (name)")
    raw.executemany("INSERT INTO items VALUES (?, ?)", ((i, f"item {i}") for i in range(ROWS)))
    raw.execute("CREATE TABLE carts (id INTEGER PRIMARY KEY, item_id INTEGER)")
    raw.executemany("INSERT INTO carts VALUES (?, ?)", ((i, i % 100) for i in range(1000)))
    raw.execute("CREATE INDEX carts_item ON carts (item_id)")
    raw.commit()
    # The capture keys windows by wall-clock time. A clock that runs at real speed from a
    # settable base puts each burst of traffic in its own 10 s window without waiting for it.
    base = [float(T0), perf_counter()]

    def now_s() -> float:
        return base[0] + perf_counter() - base[1]

    fake_time = types.SimpleNamespace(time=now_s, time_ns=lambda: int(now_s() * 1e9))
    monkeypatch.setattr(aggregate, "time", fake_time)
    inst = querywatch.instrument(raw, sink=store, flush_interval=3600)
    rng = random.Random(3)

    def window(i: int, v2: bool) -> None:
        base[:] = [T0 + 10 * i + 0.5, perf_counter()]
        traffic(inst.target, "?", v2, rng)
        inst.aggregator.absorb()  # bucket this window's statements before the clock moves on

    try:
        for i in range(V1_WINDOWS):
            window(i, v2=False)
        raw.execute("DROP INDEX items_name")  # v2's migration
        deployed = T0 + 10 * V1_WINDOWS + 2.0
        store.record_deploy(DeployMarker("d2", "v2", "bad0c0de", "prod", deployed, deployed + 2))
        for i in range(V1_WINDOWS + 1, V1_WINDOWS + 4):
            window(i, v2=True)
        inst.flush()
    finally:
        inst.close()
        raw.close()
    found = detect(store, T0 + 10 * V1_WINDOWS + 35.0, SMALL_APP)
    by_kind = {(d.kind, d.fingerprint): d for d in found}
    cast_fp = fingerprint(BY_ID_CAST.format(ph="?"), "sqlite").id
    name_fp = fingerprint(BY_NAME.format(ph="?"), "sqlite").id
    assert set(by_kind) == {("new_fingerprint", cast_fp), ("deploy_regression", name_fp)}
    new = by_kind[("new_fingerprint", cast_fp)]
    assert new.evidence["replaced_fingerprint"] == fingerprint(BY_ID.format(ph="?"), "sqlite").id
    assert new.confidence >= 0.8 and new.deploy_id == "d2"
    slowed = by_kind[("deploy_regression", name_fp)]
    assert slowed.evidence["samples"] == "per-call" and slowed.confidence >= 0.8
    assert slowed.after is not None and slowed.before is not None
    assert slowed.after.mean_ms > 20 * slowed.before.mean_ms


@pytest.mark.postgres
def test_detects_the_non_sargable_query_through_pg_stat_statements(
    pg_dsn: str, store: SqlStore
) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)")
        conn.execute(
            f"INSERT INTO items SELECT g, 'item ' || g FROM generate_series(0, {ROWS - 1}) g"
        )
        conn.execute("CREATE INDEX items_name ON items (name)")
        conn.execute("CREATE TABLE carts (id int PRIMARY KEY, item_id int)")
        conn.execute("INSERT INTO carts SELECT g, g % 100 FROM generate_series(0, 999) g")
        conn.execute("CREATE INDEX carts_item ON carts (item_id)")
        conn.execute("ANALYZE")
    source = PgStatStatementsSource(pg_dsn)
    rng = random.Random(5)
    try:
        assert source.poll(T0) == []  # the baseline snapshot
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            for i in range(1, V1_WINDOWS + 1):
                traffic(conn, "%s", False, rng)
                store.write_windows(source.poll(T0 + 10 * i))
            conn.execute("DROP INDEX items_name")  # v2's migration
            deployed = T0 + 10 * V1_WINDOWS + 2.0
            store.record_deploy(DeployMarker("d2", "v2", None, "prod", deployed, deployed + 2))
            for i in range(V1_WINDOWS + 1, V1_WINDOWS + 6):
                traffic(conn, "%s", True, rng)
                store.write_windows(source.poll(T0 + 10 * i))
    finally:
        source.close()
    found = detect(store, T0 + 10 * V1_WINDOWS + 55.0, SMALL_APP)
    by_kind = {(d.kind, d.fingerprint): d for d in found}
    cast_fp = fingerprint(BY_ID_CAST.format(ph="$1"), "postgres").id
    name_fp = fingerprint(BY_NAME.format(ph="$1"), "postgres").id
    assert ("new_fingerprint", cast_fp) in by_kind, found
    assert ("deploy_regression", name_fp) in by_kind, found
    assert {k for k, _ in by_kind} <= {"new_fingerprint", "deploy_regression"}
    slowed = by_kind[("deploy_regression", name_fp)]
    assert slowed.evidence["samples"] == "per-window"
    assert slowed.p_value is not None and slowed.p_value <= 0.01
