"""The Django integration on the example shop (examples/django), against the test PostgreSQL.

The shop runs in a subprocess of its own (Django is configured once per process, and this suite
is not a Django project): ``manage.py migrate``, then ``traffic.py`` sends every page through
Django's test client and one over real HTTP, through the app and its middleware, and flushes.
What querywatch recorded is read back from the store: exact counts, view names as routes, call
sites in the shop's own views.py, the hashed user, the release, N+1 named with the relation.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from querywatch.contrib.django.conf import read_settings
from querywatch.detect.nplusone import detect_n_plus_one
from querywatch.errors import ConfigError
from querywatch.records import StatementWindow
from querywatch.store import open_store
from querywatch.store.base import Store

pytestmark = pytest.mark.postgres

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "django"
SECRET_KEY = "example-shop-not-a-secret"  # the example's default SECRET_KEY
RELEASE = "shop-2.7"
ROUNDS = 3  # traffic.py's rounds: every page this many times through the test client
CUSTOMERS, ORDERS = 10, 20  # what traffic.py seeds


def copy_example(dest: Path) -> Path:
    """The example shop in ``dest`` (its files stay clean: runs write beside the copy)."""
    shutil.copytree(
        EXAMPLE, dest, ignore=shutil.ignore_patterns(".querywatch", "*.sqlite3", "__pycache__")
    )
    return dest


def shop_env(database_url: str, store: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("QUERYWATCH_", "PYTEST_", "DJANGO_")) and k != "COLUMNS"
    }
    env.update(
        DATABASE_URL=database_url,
        QUERYWATCH_STORE=str(store),
        SHOP_RELEASE=RELEASE,
        PYTHONDONTWRITEBYTECODE="1",
        COLUMNS="200",
        **extra,
    )
    return env


def run_in(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=project, env=env, capture_output=True, text=True, timeout=240
    )


def fresh_database(pg_server: str) -> str:
    name = f"qw_dj_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return pg_server.rsplit("/", 1)[0] + f"/{name}"


def drop_database(pg_server: str, url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'DROP DATABASE IF EXISTS "test_{name}" WITH (FORCE)')


def line_of(path: Path, marker: str) -> int:
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if marker in line:
            return number
    raise AssertionError(f"{marker!r} not in {path}")


@dataclass
class Traffic:
    project: Path
    env: dict[str, str]
    store: Store
    sent: dict[str, object]
    log: str

    def statement(self, *needles: str) -> StatementWindow:
        """The one stored statement whose text has all ``needles`` (windows summed)."""
        found = [
            w for w in self.store.statement_windows() if all(n in w.normalized for n in needles)
        ]
        assert {w.fingerprint for w in found} and len({w.fingerprint for w in found}) == 1, found
        total = found[0]
        for w in found[1:]:
            total.calls += w.calls
            total.call_sites = tuple(dict.fromkeys(total.call_sites + w.call_sites))
        return total


@pytest.fixture(scope="module")
def traffic(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traffic]:
    root = tmp_path_factory.mktemp("django-shop")
    project = copy_example(root / "shop")
    url = fresh_database(pg_server)
    store_path = root / "store.sqlite3"
    env = shop_env(url, store_path)
    try:
        migrated = run_in(project, env, "manage.py", "migrate", "-v0")
        assert migrated.returncode == 0, migrated.stderr
        store_path.unlink()  # migrations are real statements too; the pages' alone from here
        sent = run_in(project, env, "traffic.py", "--rounds", str(ROUNDS))
        assert sent.returncode == 0, sent.stderr
        store = open_store(str(store_path), read_only=True)
        try:
            yield Traffic(project, env, store, json.loads(sent.stdout), sent.stderr)
        finally:
            store.close()
    finally:
        drop_database(pg_server, url)


def test_every_page_is_served_and_flushed(traffic: Traffic) -> None:
    assert traffic.sent["flushed"] is True
    assert set(traffic.sent["statuses"].values()) == {200}  # type: ignore[union-attr]
    assert traffic.sent["http_status"] == 200
    assert traffic.sent["orders"] == ORDERS


def test_routes_are_view_names_with_exact_counts(traffic: Traffic) -> None:
    requests = {}
    for w in traffic.store.request_windows():
        r = requests.setdefault(w.route, [0, 0])
        r[0] += w.requests
        r[1] += w.db_calls
    assert requests == {
        # the orders, then one customer per order
        "shop:order-list-slow": [ROUNDS, ROUNDS * (1 + ORDERS)],
        # one query with a JOIN; the extra request came over real HTTP through the middleware
        "shop:order-list": [ROUNDS + 1, ROUNDS + 1],
        "shop:customer-list": [ROUNDS, ROUNDS * (1 + CUSTOMERS)],
        # the session, the user, their orders
        "shop:my-orders": [ROUNDS, ROUNDS * 3],
        # the count runs on a worker thread: not in the request, but captured (below)
        "shop:report": [ROUNDS, 0],
    }


def test_statements_counted_exactly_with_call_sites_in_the_shop(traffic: Traffic) -> None:
    views = traffic.project / "shop" / "views.py"
    lookup = traffic.statement('from "shop_customer" where "shop_customer"."id" = ?')
    assert lookup.calls == ROUNDS * ORDERS
    site = lookup.call_sites[0]
    assert (site.path, site.line) == ("shop/views.py", line_of(views, "o.customer.name} {o.t"))
    assert site.function.startswith("order_list_slow")
    joined = traffic.statement('inner join "shop_customer"', "limit ?")
    assert joined.calls == ROUNDS + 1
    assert [(s.path, s.line) for s in joined.call_sites] == [
        ("shop/views.py", line_of(views, "for o in orders)  # one query"))  # where it runs
    ]


def test_a_connection_opened_on_another_thread_is_captured(traffic: Traffic) -> None:
    count = traffic.statement('select count(*) as "__count" from "shop_order"')
    # three from /report/'s worker thread, one from traffic.py's summary
    assert count.calls == ROUNDS + 1
    views = traffic.project / "shop" / "views.py"
    assert ("shop/views.py", line_of(views, "on the worker's connection")) in {
        (s.path, s.line) for s in count.call_sites
    }


def test_the_signed_in_user_is_stored_hashed(traffic: Traffic) -> None:
    pk = str(traffic.sent["user_pk"])
    key = hmac.new(SECRET_KEY.encode(), pk.encode(), hashlib.sha256).hexdigest()[:16]
    users = {
        w.route: w.users for w in traffic.store.request_windows() if w.route == "shop:my-orders"
    }
    assert users == {"shop:my-orders": frozenset({key})}
    stored = json.dumps([sorted(w.users) for w in traffic.store.request_windows()])
    assert f'"{pk}"' not in stored
    # a page that never loaded the user records none (querywatch does not query it)
    assert all(not w.users for w in traffic.store.request_windows() if w.route != "shop:my-orders")


def test_the_release_comes_from_the_setting(traffic: Traffic) -> None:
    assert {w.release for w in traffic.store.request_windows()} == {RELEASE}
    assert {w.release for w in traffic.store.statement_windows(release=RELEASE)}
    assert traffic.store.statement_windows(release="") == []


def test_n_plus_one_named_with_model_relation_and_suggestion(traffic: Traffic) -> None:
    repeats = {w.route: w for w in traffic.store.repeat_windows()}
    assert set(repeats) == {"shop:order-list-slow", "shop:customer-list"}
    slow = repeats["shop:order-list-slow"]
    assert (slow.requests, slow.total_repeats, slow.max_repeats) == (ROUNDS, ROUNDS * ORDERS, 20)
    hint = json.loads(traffic.store.get_state(f"n_plus_one_hint:{slow.fingerprint}") or "{}")
    assert hint["route"] == "shop:order-list-slow"
    assert hint["relations"] == [
        {
            "model": "shop.Order",
            "relation": "customer",
            "method": "select_related",
            "suggestion": 'Order.objects.select_related("customer")',
        }
    ]
    reverse = repeats["shop:customer-list"]
    hint = json.loads(traffic.store.get_state(f"n_plus_one_hint:{reverse.fingerprint}") or "{}")
    assert [(r["model"], r["relation"], r["method"]) for r in hint["relations"]] == [
        ("shop.Customer", "orders", "prefetch_related")
    ]
    assert "Customer.orders is loaded lazily in a loop" in traffic.log
    assert 'Customer.objects.prefetch_related("orders")' in traffic.log
    # watch's N+1 finding (and the incident it opens) says it in the ORM's words too
    found = {d.route: d for d in detect_n_plus_one(traffic.store, time.time(), lookback_s=3600)}
    finding = found["shop:order-list-slow"]
    assert "Order.customer is loaded lazily in a loop" in finding.summary
    assert 'select_related("customer")' in finding.evidence["framework"]["fix"]


def test_manage_py_querywatch_runs_the_cli_on_the_project_database(traffic: Traffic) -> None:
    env = {k: v for k, v in traffic.env.items() if k != "QUERYWATCH_STORE"}
    shown = run_in(traffic.project, env, "manage.py", "querywatch", "settings")
    assert shown.returncode == 0, shown.stderr
    name = traffic.env["DATABASE_URL"].rsplit("/", 1)[1]
    dsn = next(line for line in shown.stdout.splitlines() if line.startswith("dsn "))
    assert f"dbname={name}" in dsn and "QUERYWATCH_DSN" in dsn
    store = next(line for line in shown.stdout.splitlines() if line.startswith("store "))
    assert str(traffic.project / ".querywatch" / "store.sqlite3") in store
    explained = run_in(
        traffic.project,
        env,
        "manage.py",
        "querywatch",
        "explain",
        "SELECT * FROM shop_order WHERE customer_id = 3",
    )
    assert explained.returncode == 0, explained.stderr
    assert f"dbname={name}" in explained.stdout and "shop_order" in explained.stdout
    # the command line still wins over the project's defaults
    top = run_in(
        traffic.project, env, "manage.py", "querywatch", "top", "--store", traffic.env[
            "QUERYWATCH_STORE"
        ], "--json",
    )  # fmt: skip
    assert top.returncode == 0, top.stderr
    assert "shop_customer" in top.stdout


def test_a_bad_setting_stops_django_naming_it(traffic: Traffic) -> None:
    env = {**traffic.env, "QUERYWATCH_SLO_MS": "-5"}
    checked = run_in(traffic.project, env, "manage.py", "check")
    assert checked.returncode != 0
    assert "QUERYWATCH_SLO_MS" in checked.stderr and "must be greater than 0" in checked.stderr


def test_settings_querywatch_maps_onto_querywatch_settings() -> None:
    s = read_settings(
        {"store": "/tmp/qw.sqlite3", "slo_ms": 250, "release": "r9", "repeat_threshold": 3},
        environ={},
    )
    assert s.config["store"] == "/tmp/qw.sqlite3"
    assert s.config["slo_ms"] == 250.0
    assert s.config.origins["slo_ms"] == "settings.QUERYWATCH['slo_ms']"
    assert (s.release, s.repeat_threshold, s.enabled) == ("r9", 3, True)
    # the environment wins, as it does for the CLI
    s = read_settings(
        {"slo_ms": 250, "release": "r9"},
        environ={"QUERYWATCH_SLO_MS": "900", "QUERYWATCH_RELEASE": "r10"},
    )
    assert (s.config["slo_ms"], s.release) == (900.0, "r10")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"slo_ms": -1}, "settings.QUERYWATCH: ['slo_ms'] = -1: must be greater than 0"),
        ({"sloms": 1}, "settings.QUERYWATCH: unknown key 'sloms' (known: dsn, store,"),
        ({"enabled": "maybe"}, "settings.QUERYWATCH: ['enabled'] = 'maybe': must be true or"),
        ("slo_ms=5", "settings.QUERYWATCH: must be a dict, not str"),
        ({"flush_interval": 0}, "settings.QUERYWATCH: ['flush_interval'] = 0: must be greater"),
        ({"base_url": "ftp://x"}, "['base_url'] = 'ftp://x': must be an http:// or https://"),
    ],
)
def test_a_bad_key_or_value_is_named(raw: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        read_settings(raw, environ={})  # type: ignore[arg-type]
    assert message in str(caught.value)
