"""querywatch.contrib.fastapi on the example shop (examples/fastapi: SQLAlchemy's asyncio engine
and a psycopg async pool), served by uvicorn on loopback, against the test PostgreSQL, checked
in a real store."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from contrib_helpers import assert_n_plus_one, by_route, line_of, serve_asgi, sites_of, use_example
from querywatch.capture.recorder import MemorySink, Recorder
from querywatch.contrib.fastapi import QueryWatch
from querywatch.errors import ConfigError
from querywatch.sql import fingerprint
from querywatch.store import open_store

use_example("fastapi")
import fastapi_shop  # noqa: E402

SHOP = Path(fastapi_shop.__file__).resolve()
CUSTOMERS = 8
TOTAL_SQL = 'SELECT coalesce(sum(total_cents), 0) FROM "order" WHERE customer_id = %s'


@pytest.fixture
def shop(pg_dsn: str, tmp_path: Path) -> Iterator[tuple[FastAPI, Path]]:
    """The example app on the test database, seeded, recording into a store in tmp_path."""
    store = tmp_path / "qw.sqlite3"
    app = fastapi_shop.create_app(pg_dsn, store=str(store), release="v7")
    asyncio.run(fastapi_shop.seed(app.state.engine, customers=CUSTOMERS, orders=3 * CUSTOMERS))
    yield app, store
    app.state.querywatch.close()


def get(client: httpx.Client, path: str, n: int = 1) -> None:
    for _ in range(n):
        client.get(path)


@pytest.mark.postgres
def test_routes_are_the_routers_templates_with_async_database_time(shop: Any) -> None:
    app, store_path = shop
    with serve_asgi(app) as base, httpx.Client(base_url=base) as client:
        get(client, "/customers", 3)
        get(client, "/customers/fixed", 3)
        for order_id in (5, 999):  # 999: a 404 from the same route
            get(client, f"/orders/{order_id}")
        get(client, "/customers/3/total", 2)
        get(client, "/no/such/page")
    assert app.state.querywatch.flush()

    store = open_store(store_path)
    requests = by_route(store)
    assert {route: w.requests for route, w in requests.items()} == {
        "/customers": 3,
        "/customers/fixed": 3,
        "/orders/{order_id}": 2,
        "/customers/{customer_id}/total": 2,
        "<unknown>": 1,
    }
    # Statements awaited on the AsyncEngine (in SQLAlchemy's greenlet) and on the pool's
    # connections count toward the request that awaited them.
    assert requests["/customers"].db_calls == 3 * (1 + CUSTOMERS)
    assert requests["/customers/fixed"].db_calls == 3 * 2
    assert requests["/customers/{customer_id}/total"].db_calls == 2
    assert requests["/customers"].release == "v7" and requests["/customers"].db_ms > 0
    windows = store.statement_windows()
    total = fingerprint(TOTAL_SQL, "postgres").id
    assert sum(w.calls for w in windows if w.fingerprint == total) == 2
    pool_line = line_of(SHOP, "cur = await conn.execute(")
    assert sites_of(windows, total) == {(SHOP, pool_line, "create_app.<locals>.customer_total")}
    store.close()


@pytest.mark.postgres
def test_n_plus_one_through_awaitable_attrs_is_named_on_the_route(shop: Any) -> None:
    app, store_path = shop
    with serve_asgi(app) as base, httpx.Client(base_url=base) as client:
        get(client, "/customers", 4)
        get(client, "/customers/fixed", 4)
    assert app.state.querywatch.flush()

    store = open_store(store_path)
    assert_n_plus_one(  # the fixed page repeats nothing
        store,
        route="/customers",
        requests=4,
        repeats=CUSTOMERS,
        at=(SHOP, "# N+1: one SELECT per customer", "create_app.<locals>.list_customers"),
    )
    store.close()


def ok(request: Any) -> PlainTextResponse:
    return PlainTextResponse("ok")


def api_order(order_id: int) -> dict[str, int]:
    return {"id": order_id}


def test_route_names_follow_routers_mounts_and_methods() -> None:
    """Routers with a prefix, a mounted Starlette app, a wrong method (405) and a 404."""
    api = APIRouter(prefix="/api")
    api.add_api_route("/orders/{order_id}", api_order, methods=["GET"])
    app = FastAPI()
    app.include_router(api)
    app.mount("/legacy", Starlette(routes=[Route("/items/{item:int}", ok)]))
    app.mount("/admin", Starlette(routes=[Mount("/users", routes=[Route("/{name}", ok)])]))
    recorder = Recorder(MemorySink())
    QueryWatch(app, recorder=recorder)
    with serve_asgi(app) as base, httpx.Client(base_url=base) as client:
        for path in ("/api/orders/1", "/api/orders/2", "/legacy/items/3", "/admin/users/ann"):
            assert client.get(path).status_code == 200
        assert client.post("/api/orders/1").status_code == 405
        assert client.get("/legacy/items/abc").status_code == 404
    recorder.flush()
    sink = recorder.sink
    assert isinstance(sink, MemorySink)
    seen = {w.route: w.requests for w in sink.requests}
    assert seen == {
        "/api/orders/{order_id}": 3,
        "/legacy/items/{item}": 1,
        "/admin/users/{name}": 1,
        "/legacy": 1,  # the mount matched, none of its routes did
    }
    recorder.close()


def test_a_wrong_option_is_one_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"QueryWatch\(\): slo_ms = 'fast': must be a number"):
        QueryWatch(FastAPI(), slo_ms="fast")  # type: ignore[arg-type]
