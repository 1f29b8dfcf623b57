"""The demo shop: seeding, reuse, the two releases' query behaviour, and the app's hook points."""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment
from wsgiref.util import setup_testing_defaults

import pytest

from querywatch.demo.shop.app import ShopApp
from querywatch.demo.shop.db import Connection, Db, connect
from querywatch.demo.shop.releases import commit_of, load_release
from querywatch.demo.shop.seed import Shape, read_meta, seed, table_counts

SCALE = 20_000


@pytest.fixture(scope="module")
def shop_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("shop") / "shop.db"
    seed(str(path), SCALE)
    return str(path)


def test_seed_creates_tables_with_proportional_counts(shop_db: str) -> None:
    shape = Shape.for_scale(SCALE)
    counts = table_counts(shop_db)
    assert counts["orders"] == SCALE
    assert counts["customers"] == shape.customers
    assert counts["products"] == shape.products
    assert counts["reviews"] == shape.reviews
    assert 2 * SCALE <= counts["order_items"] <= 3 * SCALE  # 1-4 items, 2.5 on average
    meta = read_meta(shop_db)
    assert meta is not None and meta["scale"] == str(SCALE)


def test_seed_is_deterministic_and_reused_until_the_scale_changes(tmp_path: Path) -> None:
    path = str(tmp_path / "shop.db")
    messages: list[tuple[float, str]] = []
    first = seed(path, 3_000, lambda f, m: messages.append((f, m)))
    assert not first.reused
    fractions = [f for f, _ in messages]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    digest = _orders_digest(path)

    again = seed(path, 3_000)
    assert again.reused

    other = seed(path, 4_000)
    assert not other.reused
    assert table_counts(path)["orders"] == 4_000

    seed(path, 3_000)
    assert _orders_digest(path) == digest  # same seed, same rows


def _orders_digest(path: str) -> tuple[Any, ...]:
    with sqlite3.connect(path) as conn:
        row = conn.execute(
            "SELECT count(*), sum(customer_id), sum(total_cents), max(created_at) FROM orders"
        ).fetchone()
    return tuple(row)


def test_a_half_written_database_is_not_mistaken_for_a_seeded_one(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    path.write_bytes(b"not a database")
    assert read_meta(str(path)) is None
    assert not seed(str(path), 1_000).reused


def _sqlite_work(db: Db, fn: Callable[[], object]) -> int:
    """SQLite virtual-machine steps ``fn`` made the database run (in hundreds): deterministic."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    conn = db.conn
    assert isinstance(conn, sqlite3.Connection)
    conn.set_progress_handler(count, 100)
    try:
        fn()
    finally:
        conn.set_progress_handler(None, 0)
    return steps


def _postgres_work(db: Db, fn: Callable[[], object]) -> int:
    """Rows of ``orders`` that PostgreSQL read (sequentially or through an index) for ``fn``."""
    import psycopg

    conn = db.conn
    assert isinstance(conn, psycopg.Connection)
    counted = (
        "SELECT coalesce(sum(seq_tup_read + coalesce(idx_tup_fetch, 0)), 0) "
        "FROM pg_stat_xact_user_tables WHERE schemaname = 'qw_shop' AND relname = 'orders'"
    )
    with conn.transaction():
        # Parallel workers count their rows elsewhere: keep the whole scan in this session.
        conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        before = conn.execute(counted).fetchone()
        fn()
        after = conn.execute(counted).fetchone()
    assert before is not None and after is not None
    return int(after[0]) - int(before[0])


def _hot_page_work(location: str, postgres: bool) -> tuple[int, int]:
    """How much work v1's and v2's hot page make the database do, for the same five customers.

    Counted by the database (rows read, or SQLite VM steps), never timed: how long it takes
    depends on the machine's load and is bench/'s business.
    """
    conn = connect(location)
    try:
        db = Db(conn, postgres=postgres)
        v1, v2 = load_release("v1").module, load_release("v2").module
        customers = [str(c) for c in (11, 523, 1777, 42, 999)]
        for customer in customers:
            assert v1.customer_orders(db, customer) == v2.customer_orders(db, customer)
        work = _postgres_work if postgres else _sqlite_work
        good = work(db, lambda: [v1.customer_orders(db, c) for c in customers])
        bad = work(db, lambda: [v2.customer_orders(db, c) for c in customers])
        return good, bad
    finally:
        conn.close()


def test_v2_hot_page_query_does_much_more_work_on_sqlite(shop_db: str) -> None:
    good, bad = _hot_page_work(shop_db, postgres=False)
    assert good > 0 and bad >= 20 * good, (good, bad)


@pytest.mark.postgres
def test_v2_hot_page_query_does_much_more_work_on_postgres(pg_dsn: str) -> None:
    assert not seed(pg_dsn, 200_000).reused
    assert seed(pg_dsn, 200_000).reused
    assert table_counts(pg_dsn)["orders"] == 200_000
    good, bad = _hot_page_work(pg_dsn, postgres=True)
    assert good > 0 and bad >= 20 * good, (good, bad)
    assert bad >= 5 * 200_000  # v2 reads the whole table for each of the five customers


def _statements_for_home_page(shop_db: str, version: str) -> list[str]:
    conn = sqlite3.connect(shop_db)
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    try:
        page = load_release(version).module.home(Db(conn, postgres=False))
        assert len(page["products"]) == 12
        assert all(isinstance(p["reviews"], int) for p in page["products"])
        return seen
    finally:
        conn.close()


def test_v2_home_page_issues_one_query_per_product(shop_db: str) -> None:
    good = _statements_for_home_page(shop_db, "v1")
    bad = _statements_for_home_page(shop_db, "v2")
    assert len(good) == 1
    assert len(bad) == 1 + 12
    assert sum("FROM reviews WHERE product_id" in s for s in bad) == 12


def test_releases_have_versions_and_commit_ids_from_their_source() -> None:
    v1, v2 = load_release("v1"), load_release("v2")
    assert (v1.version, v2.version) == ("v1", "v2")
    assert v1.module.VERSION == "v1" and v2.module.VERSION == "v2"
    assert len(v1.commit) == 12 and v1.commit != v2.commit
    assert v1.commit == commit_of("v1")
    with pytest.raises(ValueError, match="unknown release"):
        load_release("v3")


def _get(app: WSGIApplication, path: str) -> tuple[str, dict[str, str], bytes]:
    environ: WSGIEnvironment = {"wsgi.input": io.BytesIO(), "HTTP_X_USER_ID": "7"}
    setup_testing_defaults(environ)
    environ["PATH_INFO"], _, environ["QUERY_STRING"] = path.partition("?")
    answer: dict[str, Any] = {}

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], object]:
        answer["status"], answer["headers"] = status, dict(headers)
        return lambda data: None

    body = b"".join(app(environ, start_response))
    return answer["status"], answer["headers"], body


def test_app_pages_and_hook_points(shop_db: str) -> None:
    wrapped: list[Connection] = []
    seen_users: list[str] = []

    def wrap_connection(conn: Connection) -> Connection:
        wrapped.append(conn)
        return conn

    def wrap_app(app: WSGIApplication) -> WSGIApplication:
        def middleware(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            seen_users.append(environ["HTTP_X_USER_ID"])
            return app(environ, start_response)

        return middleware

    app = ShopApp("v2", shop_db, wrap_connection=wrap_connection, wrap_app=wrap_app)
    try:
        for path in (
            "/",
            "/products/3",
            "/customers/7/orders",
            "/orders/5",
            "/search?q=Lamp",
            "/health",
        ):
            status, headers, body = _get(app, path)
            assert status.startswith("200"), (path, body)
            assert headers["X-Release"] == "v2"
            assert headers["X-Commit"] == commit_of("v2")
        assert _get(app, "/products/999999999")[0].startswith("404")
        assert _get(app, "/nope")[0].startswith("404")
        assert wrapped and seen_users == ["7"] * 8
    finally:
        app.close()
