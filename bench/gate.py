"""The gate stays fast: 1,000 distinct fingerprints EXPLAINed (and linted, rule-checked, compared
with a baseline) in under a minute on the test PostgreSQL.

A small shop schema (customers, products, orders, order items; 20k-200k rows, some indexes) and
1,000 distinct, realistic statements drawn from a seeded generator: point lookups, filtered and
sorted lists with LIMIT/OFFSET, joins, aggregates, EXISTS/IN subqueries, inserts, updates and
deletes, half with literals and half with psycopg placeholders (generic plans). They are recorded
as one test run, then ``run_check`` runs the gate's check path on them, as ``querywatch check``
does, against that database.

    .venv/bin/python bench/gate.py [--dsn postgresql://...] [--n 1000] [--seed 7]

Without ``--dsn`` a throwaway cluster is started with tests/pg_cluster.py.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from querywatch.gate import Collector, run_check
from querywatch.sql import fingerprint

SCHEMA = """
DROP TABLE IF EXISTS order_items, orders, products, customers CASCADE;
CREATE TABLE customers (id bigserial PRIMARY KEY, email text NOT NULL, name text NOT NULL,
    country text NOT NULL, created_at timestamptz NOT NULL, tier int NOT NULL);
CREATE TABLE products (id bigserial PRIMARY KEY, sku text NOT NULL, title text NOT NULL,
    category text NOT NULL, price_cents int NOT NULL, stock int NOT NULL);
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers,
    status text NOT NULL, total_cents int NOT NULL, created_at timestamptz NOT NULL);
CREATE TABLE order_items (id bigserial PRIMARY KEY, order_id bigint NOT NULL REFERENCES orders,
    product_id bigint NOT NULL REFERENCES products, quantity int NOT NULL,
    price_cents int NOT NULL);
INSERT INTO customers (email, name, country, created_at, tier)
    SELECT 'c' || g || '@example.com', 'customer ' || g,
           (ARRAY['de','fr','us','jp','br'])[g % 5 + 1], now() - (g % 900) * interval '1 day',
           g % 4 FROM generate_series(1, 20000) g;
INSERT INTO products (sku, title, category, price_cents, stock)
    SELECT 'sku-' || g, 'product ' || g, (ARRAY['books','games','tools','food'])[g % 4 + 1],
           100 + g % 9000, g % 50 FROM generate_series(1, 5000) g;
INSERT INTO orders (customer_id, status, total_cents, created_at)
    SELECT 1 + g % 20000, (ARRAY['new','paid','shipped','cancelled'])[g % 4 + 1], g % 50000,
           now() - (g % 700) * interval '1 hour' FROM generate_series(1, 100000) g;
INSERT INTO order_items (order_id, product_id, quantity, price_cents)
    SELECT 1 + g % 100000, 1 + g % 5000, 1 + g % 3, 100 + g % 9000
    FROM generate_series(1, 200000) g;
CREATE UNIQUE INDEX customers_email ON customers (email);
CREATE INDEX orders_customer ON orders (customer_id);
CREATE INDEX order_items_order ON order_items (order_id);
CREATE INDEX products_category ON products (category, price_cents);
ANALYZE;
"""

COLUMNS = {
    "customers": ["id", "email", "name", "country", "created_at", "tier"],
    "products": ["id", "sku", "title", "category", "price_cents", "stock"],
    "orders": ["id", "customer_id", "status", "total_cents", "created_at"],
    "order_items": ["id", "order_id", "product_id", "quantity", "price_cents"],
}
NUMERIC = {"id", "tier", "price_cents", "stock", "customer_id", "total_cents", "quantity"}
VALUES = {
    "id": lambda r: str(r.randint(1, 20000)),
    "customer_id": lambda r: str(r.randint(1, 20000)),
    "order_id": lambda r: str(r.randint(1, 100000)),
    "product_id": lambda r: str(r.randint(1, 5000)),
    "email": lambda r: f"'c{r.randint(1, 20000)}@example.com'",
    "name": lambda r: f"'customer {r.randint(1, 20000)}'",
    "country": lambda r: repr(r.choice(["de", "fr", "us"])),
    "status": lambda r: repr(r.choice(["new", "paid", "shipped"])),
    "category": lambda r: repr(r.choice(["books", "games", "tools"])),
    "sku": lambda r: f"'sku-{r.randint(1, 5000)}'",
    "title": lambda r: f"'product {r.randint(1, 5000)}'",
    "created_at": lambda r: f"now() - interval '{r.randint(1, 30)} days'",
}


def value(r: random.Random, column: str, params: bool) -> str:
    if params:
        return "%s"
    return VALUES.get(column, lambda r: str(r.randint(0, 1000)))(r)


def select_list(r: random.Random, table: str, alias: str = "") -> str:
    cols = r.sample(COLUMNS[table], r.randint(1, len(COLUMNS[table])))
    return ", ".join(f"{alias}{c}" for c in cols)


def statement(r: random.Random) -> str:
    params = r.random() < 0.5
    table = r.choice(list(COLUMNS))
    col = r.choice(COLUMNS[table])
    op = r.choice(["=", "<", ">=", "<>"]) if col not in ("email", "sku", "name", "title") else "="
    kind = r.randrange(9)
    if kind == 0:
        return f"SELECT {select_list(r, table)} FROM {table} WHERE id = {value(r, 'id', params)}"
    if kind == 1:
        order = r.choice(COLUMNS[table])
        return (
            f"SELECT {select_list(r, table)} FROM {table} WHERE {col} {op} {value(r, col, params)}"
            f" ORDER BY {order} {r.choice(['ASC', 'DESC'])} LIMIT {r.choice([10, 20, 50])}"
            + (f" OFFSET {r.choice([0, 100, 5000])}" if r.random() < 0.3 else "")
        )
    if kind == 2:
        return (
            f"SELECT {select_list(r, 'orders', 'o.')}, c.{r.choice(COLUMNS['customers'])}"
            f" FROM orders o JOIN customers c ON c.id = o.customer_id"
            f" WHERE o.{r.choice(['status', 'customer_id', 'total_cents'])} = %s"
            f" ORDER BY o.created_at DESC LIMIT 20"
        )
    if kind == 3:
        group = r.choice(COLUMNS[table][1:])
        num = r.choice([c for c in COLUMNS[table] if c in NUMERIC])
        agg = r.choice(["count(*)", f"sum({num})", f"max({num})", f"avg({num})"])
        return f"SELECT {group}, {agg} FROM {table} GROUP BY {group}" + (
            " HAVING count(*) > 1" if r.random() < 0.5 else ""
        )
    if kind == 4:
        inner = r.choice(["EXISTS", "IN"])
        status = value(r, "status", params)
        if inner == "EXISTS":
            cond = (
                "EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id"
                f" AND o.status = {status})"
            )
        else:
            cond = f"c.id IN (SELECT customer_id FROM orders WHERE status = {status})"
        return f"SELECT {select_list(r, 'customers', 'c.')} FROM customers c WHERE {cond} LIMIT 50"
    if kind == 5:
        cols = r.sample(COLUMNS["order_items"][1:], r.randint(2, 4))
        return (
            f"INSERT INTO order_items ({', '.join(cols)}) VALUES"
            f" ({', '.join(value(r, c, params) for c in cols)})"
        )
    if kind == 6:
        target = r.choice(COLUMNS[table][1:])
        return (
            f"UPDATE {table} SET {target} = {value(r, target, params)}"
            f" WHERE {col} {op} {value(r, col, params)}"
        )
    if kind == 7:
        return f"DELETE FROM {table} WHERE {col} {op} {value(r, col, params)}"
    group = r.choice(COLUMNS["products"])
    return (
        f"SELECT p.{group}, sum(i.quantity) FROM order_items i"
        f" JOIN products p ON p.id = i.product_id WHERE i.order_id = {value(r, 'order_id', params)}"
        f" GROUP BY p.{group}"
    )


def statements(n: int, seed: int) -> list[str]:
    r = random.Random(seed)
    out: dict[str, str] = {}
    while len(out) < n:
        sql = statement(r)
        out.setdefault(fingerprint(sql, "postgres").id, sql)
    return list(out.values())


@contextlib.contextmanager
def postgres(dsn: str | None) -> Iterator[str]:
    if dsn:
        yield dsn
        return
    from pg_cluster import running_cluster

    with running_cluster() as started:
        yield started


def issue(collector: Collector, db: str, sql: str) -> None:
    """The application issuing one statement (recorded as ``pytest --querywatch`` does)."""
    collector.record(sql, "postgres", db)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dsn", help="an existing PostgreSQL (default: a throwaway cluster)")
    ap.add_argument("--n", type=int, default=1000, help="distinct fingerprints (default 1000)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--verbose", action="store_true", help="show statements that failed")
    args = ap.parse_args()
    work = statements(args.n, args.seed)
    with postgres(args.dsn) as dsn:
        t0 = time.perf_counter()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(SCHEMA)
        print(f"schema and data loaded in {time.perf_counter() - t0:.1f} s")
        collector = Collector()
        db = collector.database("postgres", dsn)
        for i, sql in enumerate(work):
            with collector.test(f"tests/test_shop.py::test_{i // 10}"):
                issue(collector, db, sql)
        run = collector.close()
        assert len(run.statements) == args.n, len(run.statements)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            report = run_check(run, baseline_path=Path(tmp) / "b.json")
            elapsed = time.perf_counter() - t0
    explained = sum(q.explained for q in report.queries)
    rules = Counter(f.rule for f in report.new + report.unchecked)
    if args.verbose:
        for f in report.unchecked[:10]:
            print(f"  {f.message}: {f.sql}")
    print(f"statements checked: {len(report.queries)} distinct fingerprints, {explained} EXPLAINed")
    print(f"check time: {elapsed:.1f} s, {len(report.queries) / elapsed:.0f} statements/s")
    print(f"findings: {dict(sorted(rules.items()))}")
    print(f"goal: 1,000 in under 60 s -> {'met' if elapsed < 60 * args.n / 1000 else 'MISSED'}")


if __name__ == "__main__":
    main()
