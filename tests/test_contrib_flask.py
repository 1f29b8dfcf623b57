"""querywatch.contrib.flask on the example shop (examples/flask), served over loopback HTTP,
against the test PostgreSQL, checked in a real store."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask

from contrib_helpers import (
    assert_n_plus_one,
    by_route,
    line_of,
    serve_wsgi,
    sqlalchemy_url,
    use_example,
)
from querywatch.contrib.flask import QueryWatch, flask_route
from querywatch.errors import ConfigError
from querywatch.store import open_store

use_example("flask")
import flask_shop  # noqa: E402

SHOP = Path(flask_shop.__file__).resolve()
CUSTOMERS = 8


@pytest.fixture
def shop(pg_dsn: str, tmp_path: Path) -> Iterator[tuple[Flask, Path]]:
    """The example app on the test database, seeded, recording into a store in tmp_path."""
    store = tmp_path / "qw.sqlite3"
    app = flask_shop.create_app(
        sqlalchemy_url(pg_dsn), QUERYWATCH_STORE=str(store), QUERYWATCH_RELEASE="v1"
    )
    with app.app_context():
        flask_shop.seed(customers=CUSTOMERS, orders=3 * CUSTOMERS)
    yield app, store
    app.extensions["querywatch"].close()
    with app.app_context():
        flask_shop.db.engine.dispose()


def get(client: httpx.Client, path: str, n: int = 1, **headers: str) -> None:
    for _ in range(n):
        client.get(path, headers=headers)


@pytest.mark.postgres
def test_routes_are_flask_url_rules_with_database_time_and_users(shop: Any) -> None:
    app, store_path = shop
    with serve_wsgi(app) as base, httpx.Client(base_url=base) as client:
        get(client, "/customers", 3, **{"X-User-Id": "ann"})
        get(client, "/customers/fixed", 3, **{"X-User-Id": "bob"})
        for order_id in (4, 7, 999):  # 999: a 404 from the same rule
            get(client, f"/orders/{order_id}")
        get(client, "/no/such/page")
    assert app.extensions["querywatch"].flush()

    store = open_store(store_path)
    requests = by_route(store)
    assert {route: w.requests for route, w in requests.items()} == {
        "/customers": 3,
        "/customers/fixed": 3,
        "/orders/<int:order_id>": 3,
        "<unknown>": 1,
    }
    # The N+1 page runs 1 + one per customer, the fixed one 2 statements, per request.
    assert requests["/customers"].db_calls == 3 * (1 + CUSTOMERS)
    assert requests["/customers/fixed"].db_calls == 3 * 2
    assert requests["/customers"].db_ms > 0
    assert requests["/customers"].users and requests["/customers"].release == "v1"
    assert requests["<unknown>"].db_calls == 0
    store.close()


def test_a_request_flask_has_not_routed_is_matched_with_the_apps_url_map() -> None:
    """An environ without Werkzeug's request (a middleware that copied it): the app's URL
    adapter names the rule; a path no rule matches is <unknown>."""
    from werkzeug.test import EnvironBuilder

    app = flask_shop.create_app("sqlite://", QUERYWATCH_STORE=":memory:")
    assert flask_route(app, EnvironBuilder(path="/orders/42").get_environ()) == (
        "/orders/<int:order_id>"
    )
    assert flask_route(app, EnvironBuilder(path="/orders/x").get_environ()) == "<unknown>"
    app.extensions["querywatch"].close()


@pytest.mark.postgres
def test_n_plus_one_is_named_on_the_route_with_the_loop_as_call_site(shop: Any) -> None:
    app, store_path = shop
    with serve_wsgi(app) as base, httpx.Client(base_url=base) as client:
        get(client, "/customers", 4)
        get(client, "/customers/fixed", 4)
    assert app.extensions["querywatch"].flush()

    store = open_store(store_path)
    assert_n_plus_one(  # the fixed page repeats nothing
        store,
        route="/customers",
        requests=4,
        repeats=CUSTOMERS,
        at=(SHOP, "# N+1: one SELECT per customer", "create_app.<locals>.list_customers"),
    )
    store.close()


@pytest.mark.postgres
def test_init_app_before_flask_sqlalchemy_instruments_at_the_first_app_context(
    pg_dsn: str, tmp_path: Path
) -> None:
    """The application-factory order: QueryWatch().init_app(app) runs before db.init_app(app);
    the engine is found at the first app context, so the first request is counted too."""
    qw = QueryWatch()
    app = Flask("factory")
    app.config.update(
        SQLALCHEMY_DATABASE_URI=sqlalchemy_url(pg_dsn), QUERYWATCH_STORE=str(tmp_path / "q.db")
    )
    qw.init_app(app)
    flask_shop.db.init_app(app)

    @app.get("/orders/<int:order_id>/total")
    def order_total(order_id: int) -> dict[str, int]:
        order = flask_shop.db.session.get(flask_shop.Order, order_id)
        return {"total_cents": order.total_cents if order else 0}

    with app.app_context():  # the first app context: instruments db.engine
        flask_shop.seed(customers=2, orders=4)
    with serve_wsgi(app) as base, httpx.Client(base_url=base) as client:
        get(client, "/orders/3/total", 2)
    assert qw.flush()
    store = open_store(tmp_path / "q.db")
    (window,) = by_route(store).values()
    assert window.route == "/orders/<int:order_id>/total"
    assert (window.requests, window.db_calls) == (2, 2)
    assert sum(w.calls for w in store.statement_windows()) > 2  # the seeding statements too
    store.close()
    qw.capture(app).close()
    with app.app_context():
        flask_shop.db.engine.dispose()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("QUERYWATCH_SLO_MS", "fast", r"app.config: QUERYWATCH_SLO_MS = 'fast': must be a number"),
        ("QUERYWATCH_REPEAT_THRESHOLD", 0, r"QUERYWATCH_REPEAT_THRESHOLD = 0: must be a whole"),
        ("QUERYWATCH_STORAGE", "x.db", r"app.config: unknown option QUERYWATCH_STORAGE \(known"),
    ],
)
def test_a_wrong_querywatch_setting_in_app_config_is_one_clear_error(
    key: str, value: object, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        flask_shop.create_app("sqlite://", **{key: value})


def test_import_querywatch_imports_no_framework() -> None:
    """The integrations are optional extras: the core (and in-app capture, with its job
    tracker) never imports Flask, FastAPI, Starlette, Celery or SQLAlchemy."""
    code = (
        "import sys, querywatch, querywatch.capture.jobs, querywatch.capture.middleware\n"
        "frameworks = ('flask', 'werkzeug', 'fastapi', 'starlette', 'celery', 'sqlalchemy')\n"
        "print(' '.join(m for m in frameworks if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_code_sqlalchemy_generates_is_not_a_call_site(tmp_path: Path) -> None:
    """SQLAlchemy compiles some of its own functions ("<sqlalchemy generated ...>"); the call
    site of a flush is the application line that committed, not that generated code."""
    app = flask_shop.create_app(
        f"sqlite:///{tmp_path / 'shop.db'}", QUERYWATCH_STORE=str(tmp_path / "qw.sqlite3")
    )
    with app.app_context():
        flask_shop.seed(customers=2, orders=2)
    capture = app.extensions["querywatch"]
    capture.close()
    store = open_store(tmp_path / "qw.sqlite3")
    sites = {s for w in store.statement_windows() for s in w.call_sites}
    store.close()
    assert sites and not [s for s in sites if s.path.startswith("<")]
    commit = line_of(SHOP, "db.session.commit()")
    assert any(Path(s.path).resolve() == SHOP and s.line == commit for s in sites)
