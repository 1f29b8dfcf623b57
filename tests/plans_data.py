"""Real data for the plan tests: tables big enough that sizes decide the verdicts.

One PostgreSQL database per test session (built once, ~2 s) and one SQLite file per session:

- ``orders``: 200,000 rows; indexes on ``id`` (pk), ``created``, ``email``. ``customer_id`` has no
  index (10 rows per customer), ``status`` has 4 values (25% each), ``region_a/b/c`` are equal
  (perfectly correlated, 100 values), ``note`` is an md5.
- ``orders_keyed``: the same 200,000 rows, plus indexes on ``customer_id`` and ``note``.
- ``orders_small``: the same shape and indexes as ``orders`` with 1,000 rows.
- ``customers``: 20,000 customers, ``tier`` with 2,000 values (10 customers each).
- ``big``: 2,000,000 rows shaped like pgbench's accounts: ``aid`` (pk), ``bid`` (20 values),
  ``abalance`` (spread), ``grp`` (1,000 values), ``ref`` (nullable, 2% NULL), ``day`` (100 values
  in insertion order), a short ``filler``; only ``aid`` is indexed, plus a partial index on ``aid``
  of the 2% of rows whose ``ref`` is NULL. ``big_small`` is its first
  10,000 rows with the same indexes (the same query, fine at that size); ``branches`` holds the
  20 ``bid`` values.
- ``wide``: 200,000 rows ~530 B wide (a 512-character ``body``; 112 MB), ``kind`` with 50 values;
  only ``id`` is indexed.

The whole database builds in about 12 s.

Autovacuum is off on these tables so the statistics ANALYZE gathered stay as they are.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from urllib.parse import quote

import psycopg

_PG: dict[str, str] = {}
_SQLITE: dict[str, Path] = {}

ORDERS_ROWS = 200_000
SMALL_ROWS = 1_000

_ORDERS = """
CREATE TABLE {name} (
    id int PRIMARY KEY, customer_id int NOT NULL, status text NOT NULL, email text NOT NULL,
    region_a int NOT NULL, region_b int NOT NULL, region_c int NOT NULL,
    note text NOT NULL, created timestamptz NOT NULL, amount numeric(10, 2) NOT NULL
) WITH (autovacuum_enabled = false);
INSERT INTO {name}
SELECT g, g % 20000, (ARRAY['new', 'paid', 'shipped', 'done'])[1 + g % 4],
       'user' || g || '@example.com', g % 100, g % 100, g % 100, md5(g::text),
       timestamptz '2024-01-01' + g * interval '1 minute', (g % 1000) / 10.0
FROM generate_series(1, {rows}) AS g;
CREATE INDEX {name}_created ON {name} (created);
CREATE INDEX {name}_email ON {name} (email);
"""


BIG_ROWS = 2_000_000

_BIG = f"""
CREATE TABLE big (
    aid int NOT NULL, bid int NOT NULL, abalance int NOT NULL, grp int NOT NULL, ref int,
    day int NOT NULL, filler text NOT NULL
) WITH (autovacuum_enabled = false);
INSERT INTO big
SELECT g, g % 20 + 1, (g::bigint * 2654435761 % 1000003)::int, g % 1000,
       CASE WHEN g % 50 = 0 THEN NULL ELSE g % 100000 END, g / 20000, 'filler-' || (g % 997)
FROM generate_series(1, {BIG_ROWS}) AS g;
ALTER TABLE big ADD PRIMARY KEY (aid);
CREATE INDEX big_unreferenced ON big (aid) WHERE ref IS NULL;
CREATE TABLE big_small (LIKE big INCLUDING ALL) WITH (autovacuum_enabled = false);
INSERT INTO big_small SELECT * FROM big WHERE aid <= 10000;
CREATE TABLE branches (bid int PRIMARY KEY, name text NOT NULL);
INSERT INTO branches SELECT g, 'branch ' || g FROM generate_series(1, 20) AS g;
CREATE TABLE wide (
    id int PRIMARY KEY, kind int NOT NULL, created int NOT NULL, body text NOT NULL
) WITH (autovacuum_enabled = false);
INSERT INTO wide SELECT g, g % 50, g, repeat(md5(g::text), 16) FROM generate_series(1, 200000) AS g;
"""


def plans_database(admin_dsn: str) -> str:
    """DSN of the shared plan-test database on the test cluster (HypoPG created in it)."""
    if admin_dsn in _PG:
        return _PG[admin_dsn]
    name = f"qw_plans_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = admin_dsn.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION hypopg")
        conn.execute(_ORDERS.format(name="orders", rows=ORDERS_ROWS))
        conn.execute(_ORDERS.format(name="orders_small", rows=SMALL_ROWS))
        conn.execute(
            "CREATE TABLE orders_keyed (LIKE orders INCLUDING ALL) "
            "WITH (autovacuum_enabled = false)"
        )
        conn.execute("INSERT INTO orders_keyed SELECT * FROM orders")
        conn.execute("CREATE INDEX orders_keyed_customer ON orders_keyed (customer_id)")
        conn.execute("CREATE INDEX orders_keyed_note ON orders_keyed (note)")
        conn.execute(
            "CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, tier int NOT NULL)"
            " WITH (autovacuum_enabled = false)"
        )
        conn.execute(
            "INSERT INTO customers SELECT g, 'customer ' || g, g % 2000 "
            "FROM generate_series(0, 19999) AS g"
        )
        conn.execute(_BIG)
        conn.execute("ANALYZE")
    _PG[admin_dsn] = dsn
    return dsn


def with_options(dsn: str, **settings: str) -> str:
    """``dsn`` with server settings for the session (libpq ``options=-c name=value``)."""
    opts = " ".join(f"-c {k}={v}" for k, v in settings.items())
    sep = "&" if "?" in dsn else "?"
    return f"{dsn}{sep}options={quote(opts)}"


def sqlite_database(directory: Path) -> Path:
    """A SQLite file with ``orders`` (200,000 rows), ``orders_small`` (1,000), ``customers``."""
    key = str(directory)
    if key in _SQLITE:
        return _SQLITE[key]
    path = directory / "shop.sqlite3"
    conn = sqlite3.connect(path)
    for name, rows in (("orders", ORDERS_ROWS), ("orders_small", SMALL_ROWS)):
        conn.executescript(
            f"""
            CREATE TABLE {name} (id INTEGER PRIMARY KEY, customer_id INT, status TEXT,
                                 email TEXT, note TEXT, created TEXT);
            CREATE INDEX {name}_created ON {name} (created);
            CREATE INDEX {name}_email ON {name} (email);
            WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {rows})
            INSERT INTO {name}
            SELECT n, n % 20000, 'status' || (n % 4), 'user' || n || '@example.com',
                   hex(randomblob(8)), datetime(1700000000 + n * 60, 'unixepoch')
            FROM g;
            """
        )
    conn.executescript(
        """
        CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, tier INT);
        WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n < 19999)
        INSERT INTO customers SELECT n, 'customer ' || n, n % 2000 FROM g;
        """
    )
    conn.commit()
    conn.close()
    _SQLITE[key] = path
    return path
