"""The CI gate on the example shop's tests: ``pytest --querywatch`` under pytest-django and
``manage.py test --querywatch``, each a real run in a subprocess against the test PostgreSQL.

The shop's tests request its pages; the gate must record their statements per test, leave out
Django's creation and migration of the test database, EXPLAIN on the test database while it
exists, and fail on the two N+1 pages with findings that name the model, the relation and the
``select_related``/``prefetch_related`` to use.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from test_contrib_django import (
    copy_example,
    drop_database,
    fresh_database,
    line_of,
    run_in,
    shop_env,
)

pytestmark = pytest.mark.postgres

DJANGO_BOOKKEEPING = re.compile(
    r"django_migrations|django_content_type|auth_permission|create table|alter table|create index"
)


@pytest.fixture
def shop(pg_server: str, tmp_path: Path) -> Iterator[tuple[Path, dict[str, str], str]]:
    project = copy_example(tmp_path / "shop")
    url = fresh_database(pg_server)
    try:
        yield project, shop_env(url, tmp_path / "store.sqlite3"), url.rsplit("/", 1)[1]
    finally:
        drop_database(pg_server, url)


def _findings(output: str) -> str:
    return " ".join(output.split())  # the report wraps long lines


def _test_ids(prefix: str) -> set[str]:
    """The example's three tests, as the runner names them."""
    return {prefix + t for t in ("test_order_list_slow", "test_order_list", "test_customer_list")}


def _check_run(run_file: Path, test_ids: set[str], name: str) -> dict[str, object]:
    run = json.loads(run_file.read_text())
    assert set(run["tests"]) >= test_ids
    texts = [s["normalized"] for s in run["statements"].values()]
    assert not [t for t in texts if DJANGO_BOOKKEEPING.search(t)]
    # each page's queries, planned on the test database while it existed
    lookup = next(
        fp
        for fp, s in run["statements"].items()
        if 'from "shop_customer" where "shop_customer"."id" = ?' in s["normalized"]
    )
    plan = run["plans"][lookup]
    assert f"dbname=test_{name}" in plan["database"] and plan.get("shape")
    return run


def _assert_named(report: str, views: Path) -> None:
    text = _findings(report)
    assert text.count("n-plus-one (warning)") == 2  # not the fixed page
    slow = line_of(views, 'o.customer.name} {o.total_cents}" for o in orders)  # N+1')
    assert f"n-plus-one (warning) at shop/views.py:{slow}" in text
    assert "Order.customer is loaded lazily in a loop: one query per Order (shop.Order)" in text
    assert 'fix: fetch the Order rows with Order.objects.select_related("customer")' in text
    reverse = line_of(views, "len(c.orders.all())")
    assert f"n-plus-one (warning) at shop/views.py:{reverse}" in text
    assert "Customer.orders is loaded lazily in a loop" in text
    assert 'Customer.objects.prefetch_related("orders")' in text


def test_pytest_django_gate(shop: tuple[Path, dict[str, str], str]) -> None:
    project, env, name = shop
    gate = run_in(
        project,
        env,
        "-m",
        "pytest",
        "--querywatch",
        "-p",
        "no:cacheprovider",
        "--querywatch-run",
        "run.json",
    )
    assert gate.returncode == 1, gate.stdout + gate.stderr  # the tests pass; the gate fails
    assert "3 passed" in gate.stdout
    _assert_named(gate.stdout, project / "shop" / "views.py")
    _check_run(project / "run.json", _test_ids("shop/tests.py::ShopPagesTests::"), name)


def test_manage_py_test_gate(shop: tuple[Path, dict[str, str], str]) -> None:
    project, env, name = shop
    gate = run_in(project, env, "manage.py", "test", "--querywatch", "--querywatch-run", "run.json")
    assert gate.returncode == 1, gate.stdout + gate.stderr
    assert "Ran 3 tests" in gate.stderr and "\nOK\n" in gate.stderr
    _assert_named(gate.stderr, project / "shop" / "views.py")
    _check_run(project / "run.json", _test_ids("shop.tests.ShopPagesTests."), name)
    # without --querywatch it is Django's runner: nothing recorded, the tests' own status
    plain = run_in(project, env, "manage.py", "test")
    assert plain.returncode == 0, plain.stderr
    assert "querywatch check" not in plain.stderr
