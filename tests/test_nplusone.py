"""N+1 end to end: a real WSGI app over HTTP on a sqlite3 file, flushed into a real SQLite store.

``/orders/{id}`` loads an order's items one query per item (the N+1); ``/orders/{id}/joined``
loads the same data with one join and looks the customer up twice (a fingerprint repeated a couple
of times, which must stay quiet); ``/orders/{id}/few`` repeats a lookup 6 times (captured as a
repeat, but under the detector's default ``min_repeats``).
"""

from __future__ import annotations

import sqlite3
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

import querywatch
from querywatch.capture.middleware import WSGIMiddleware
from querywatch.capture.recorder import Recorder
from querywatch.detect.nplusone import detect_n_plus_one
from querywatch.records import DeployMarker, RepeatWindow, RequestWindow, window_start
from querywatch.sql import fingerprint
from querywatch.store import SqlStore, open_store

ITEMS_PER_ORDER = 12
ITEM_SQL = "SELECT name FROM products WHERE id = ?"
JOIN_SQL = (
    "SELECT p.name FROM order_items oi JOIN products p ON p.id = oi.product_id "
    "WHERE oi.order_id = ?"
)
LINES_SQL = "SELECT product_id FROM order_items WHERE order_id = ?"
CUSTOMER_SQL = "SELECT name FROM customers WHERE id = ?"
STOCK_SQL = "SELECT qty FROM stock WHERE product_id = ?"


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    db = tmp_path / "shop.db"
    conn = sqlite3.connect(db)
    conn.executescript(
        """
        CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
        CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
        CREATE TABLE stock (product_id INTEGER PRIMARY KEY, qty INTEGER NOT NULL);
        CREATE TABLE order_items (order_id INTEGER NOT NULL, product_id INTEGER NOT NULL);
        """
    )
    conn.executemany("INSERT INTO products VALUES (?, ?)", [(i, f"p{i}") for i in range(100)])
    conn.executemany("INSERT INTO stock VALUES (?, ?)", [(i, i) for i in range(100)])
    conn.execute("INSERT INTO customers VALUES (1, 'ada')")
    conn.executemany(
        "INSERT INTO order_items VALUES (?, ?)",
        [(o, (o * 7 + k) % 100) for o in range(20) for k in range(ITEMS_PER_ORDER)],
    )
    conn.commit()
    conn.close()
    return db


@pytest.fixture
def serve() -> Iterator[Callable[[Any], str]]:
    servers: list[WSGIServer] = []

    def start(app: Any) -> str:
        server = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return bytes(resp.read())


def shop_app(conn: Any) -> Callable[[dict[str, Any], Any], list[bytes]]:
    lock = threading.Lock()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        parts = environ["PATH_INFO"].strip("/").split("/")
        order = int(parts[1])
        with lock:
            if len(parts) == 2:  # N+1: one query per order line
                ids = [r[0] for r in conn.execute(LINES_SQL, (order,)).fetchall()]
                names = [conn.execute(ITEM_SQL, (i,)).fetchone()[0] for i in ids]
            elif parts[2] == "joined":
                names = [r[0] for r in conn.execute(JOIN_SQL, (order,)).fetchall()]
                conn.execute(CUSTOMER_SQL, (1,)).fetchone()
                conn.execute(CUSTOMER_SQL, (1,)).fetchone()  # twice: not an N+1
            else:  # "few": six stock lookups, captured but under min_repeats
                names = [str(conn.execute(STOCK_SQL, (k,)).fetchone()[0]) for k in range(6)]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [",".join(names).encode()]

    return app


def run_traffic(base: str, orders: int) -> None:
    for o in range(orders):
        assert len(get(f"{base}/orders/{o}").split(b",")) == ITEMS_PER_ORDER
        assert len(get(f"{base}/orders/{o}/joined").split(b",")) == ITEMS_PER_ORDER
        get(f"{base}/orders/{o}/few")


def capture(shop: Path, store_path: Path, serve: Callable[[Any], str], orders: int) -> None:
    recorder = Recorder(str(store_path), flush_interval=60)
    inst = querywatch.instrument(sqlite3.connect(shop, check_same_thread=False), recorder=recorder)
    run_traffic(serve(WSGIMiddleware(shop_app(inst.target), recorder)), orders)
    inst.close()
    recorder.close()


def fp(sql: str) -> str:
    return fingerprint(sql, "sqlite").id


def merged(windows: list[RepeatWindow]) -> dict[tuple[str, str], RepeatWindow]:
    out: dict[tuple[str, str], RepeatWindow] = {}
    for w in windows:
        m = out.get((w.route, w.fingerprint))
        if m is None:
            out[(w.route, w.fingerprint)] = RepeatWindow(
                w.route, w.fingerprint, 0, w.requests, w.total_repeats, w.max_repeats,
                w.normalized, w.dialect,
            )  # fmt: skip
        else:
            m.requests += w.requests
            m.total_repeats += w.total_repeats
            m.max_repeats = max(m.max_repeats, w.max_repeats)
    return out


def test_repeats_are_captured_per_route_and_fingerprint(
    shop: Path, tmp_path: Path, serve: Callable[[Any], str]
) -> None:
    store_path = tmp_path / "qw.sqlite3"
    capture(shop, store_path, serve, orders=8)
    with open_store(store_path) as store:
        repeats = merged(store.repeat_windows())
    n_plus_one = repeats[("/orders/{id}", fp(ITEM_SQL))]
    assert (n_plus_one.requests, n_plus_one.total_repeats) == (8, 8 * ITEMS_PER_ORDER)
    assert n_plus_one.max_repeats == ITEMS_PER_ORDER
    assert n_plus_one.normalized == fingerprint(ITEM_SQL, "sqlite").normalized
    assert n_plus_one.dialect == "sqlite"
    few = repeats[("/orders/{id}/few", fp(STOCK_SQL))]
    assert (few.requests, few.total_repeats, few.max_repeats) == (8, 48, 6)
    # Statements run once or twice per request are not repeats: the join route has none.
    assert set(repeats) == {("/orders/{id}", fp(ITEM_SQL)), ("/orders/{id}/few", fp(STOCK_SQL))}


def test_n_plus_one_is_detected_on_the_route_that_does_it(
    shop: Path, tmp_path: Path, serve: Callable[[Any], str]
) -> None:
    store_path = tmp_path / "qw.sqlite3"
    capture(shop, store_path, serve, orders=8)
    with open_store(store_path) as store:
        found = detect_n_plus_one(store, time.time())
    assert len(found) == 1
    [d] = found
    assert d.kind == "n_plus_one"
    assert (d.route, d.fingerprint) == ("/orders/{id}", fp(ITEM_SQL))
    assert d.normalized == fingerprint(ITEM_SQL, "sqlite").normalized
    assert d.deploy_id is None  # no deploy recorded
    assert f"{ITEMS_PER_ORDER} times per request (max {ITEMS_PER_ORDER}) in 8 requests" in (
        d.summary
    )
    assert d.summary.startswith("/orders/{id} runs `select name from products")
    assert d.evidence["share_of_route_requests"] == 1.0
    assert 0.5 < d.confidence <= 1.0
    # Lowering the bar makes the six-fold lookup count; the join route never shows up.
    with open_store(store_path) as store:
        loose = detect_n_plus_one(store, time.time(), min_repeats=5)
    assert {(x.route, x.fingerprint) for x in loose} == {
        ("/orders/{id}", fp(ITEM_SQL)),
        ("/orders/{id}/few", fp(STOCK_SQL)),
    }


def test_too_few_requests_do_not_fire(
    shop: Path, tmp_path: Path, serve: Callable[[Any], str]
) -> None:
    store_path = tmp_path / "qw.sqlite3"
    capture(shop, store_path, serve, orders=2)
    with open_store(store_path) as store:
        assert detect_n_plus_one(store, time.time()) == []  # 2 < min_requests
        assert len(detect_n_plus_one(store, time.time(), min_requests=2)) == 1


def test_a_pattern_born_with_a_deploy_names_it(
    shop: Path, tmp_path: Path, serve: Callable[[Any], str]
) -> None:
    store_path = tmp_path / "qw.sqlite3"
    now = time.time()
    before = window_start(now) - 60
    with open_store(store_path) as store:
        # The previous release served the route a minute ago without repeating anything.
        store.write_requests([RequestWindow("/orders/{id}", before, 40, 0, 80.0, 4.0, 20.0, 80)])
        store.record_deploy(
            DeployMarker("d-2", "v2", "abc", "prod", started_at=before + 30, finished_at=None)
        )
    capture(shop, store_path, serve, orders=5)
    with open_store(store_path) as store:
        [d] = detect_n_plus_one(store, time.time(), lookback_s=120)
        assert d.deploy_id == "d-2" and d.summary.endswith("in 5 requests since deploy v2")
        # The same pattern seen before the deploy is not blamed on it.
        store.write_repeats(
            [RepeatWindow("/orders/{id}", fp(ITEM_SQL), before, 3, 36, 12, "", "sqlite")]
        )
        [again] = detect_n_plus_one(store, time.time(), lookback_s=120)
        assert again.deploy_id is None


def test_store_typing_accepts_the_detector(tmp_path: Path) -> None:
    with open_store(tmp_path / "empty.sqlite3") as store:
        assert isinstance(store, SqlStore)
        assert detect_n_plus_one(store, time.time()) == []
