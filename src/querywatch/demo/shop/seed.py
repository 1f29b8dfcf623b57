"""Deterministic seed data for the shop, big enough that a full scan of ``orders`` hurts.

``scale`` is the number of orders; every other table is proportional (see :class:`Shape`). The
same seed gives the same rows on SQLite and PostgreSQL. A seeded database records its scale and
schema version in ``meta`` and is reused when both match; otherwise it is rebuilt. SQLite is
seeded into a temporary file renamed into place at the end, so an interrupted seed never looks
complete; PostgreSQL is seeded in one transaction (``COPY``) into the ``qw_shop`` schema.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from querywatch.demo.shop.db import PG_SCHEMA, is_postgres
from querywatch.demo.shop.schema import COLUMNS, DATA_TABLES, INDEXES, SCHEMA_VERSION, TABLES

#: Orders seeded by default on SQLite: 12-16 s to seed on a 2-core machine.
DEFAULT_SQLITE_SCALE = 1_000_000
#: Orders seeded by default on PostgreSQL.
DEFAULT_PG_SCALE = 2_000_000
#: The random seed: same value, same shop.
RANDOM_SEED = 20_240_601
#: The shop's "now": the newest order is just before it (fixed so data is reproducible).
DATA_END = 1_717_200_000
#: Orders span three years before DATA_END.
DATA_SPAN = 3 * 365 * 86_400

_BATCH = 20_000

ProgressFn = Callable[[float, str], None]


@dataclass(frozen=True)
class Shape:
    """Row counts of a shop of a given scale (order_items is about 2.5 per order, not fixed)."""

    orders: int
    customers: int
    products: int
    reviews: int

    @classmethod
    def for_scale(cls, scale: int) -> Shape:
        if scale < 1:
            raise ValueError(f"scale must be a positive number of orders, got {scale}")
        return cls(
            orders=scale,
            customers=max(100, scale // 10),
            products=max(50, min(20_000, scale // 100)),
            reviews=max(10, scale // 4),
        )


@dataclass(frozen=True)
class SeedResult:
    """What :func:`seed` did: ``reused`` is True when an existing database already matched."""

    location: str
    shape: Shape
    reused: bool
    seconds: float


def default_scale(location: str) -> int:
    """The default number of orders for this kind of database."""
    return DEFAULT_PG_SCALE if is_postgres(location) else DEFAULT_SQLITE_SCALE


def _noop(fraction: float, message: str) -> None:
    pass


# ---------------------------------------------------------------------------------------------
# Row generation (shared by both databases)
# ---------------------------------------------------------------------------------------------

_ADJECTIVES = (
    "Classic",
    "Compact",
    "Deluxe",
    "Eco",
    "Ergonomic",
    "Handmade",
    "Heavy",
    "Light",
    "Modern",
    "Portable",
    "Rugged",
    "Smart",
    "Vintage",
    "Wireless",
    "Premium",
    "Basic",
)
_NOUNS = (
    "Backpack",
    "Blender",
    "Camera",
    "Chair",
    "Desk",
    "Headphones",
    "Kettle",
    "Lamp",
    "Mug",
    "Notebook",
    "Pan",
    "Shoes",
    "Speaker",
    "Tent",
    "Watch",
    "Bottle",
    "Jacket",
    "Keyboard",
)
_CATEGORIES = ("home", "kitchen", "outdoor", "office", "audio", "fashion", "sports", "toys")
_STREETS = ("Main", "Oak", "Pine", "Maple", "Cedar", "Elm", "Lake", "Hill", "Park", "River")
_CITIES = (
    "Springfield, IL 62701",
    "Portland, OR 97201",
    "Austin, TX 73301",
    "Madison, WI 53703",
    "Boulder, CO 80302",
    "Raleigh, NC 27601",
    "Tucson, AZ 85701",
    "Albany, NY 12207",
)
_STATUSES = ("delivered",) * 16 + ("shipped", "shipped", "paid", "cancelled")
_REVIEW_BODIES = (
    "Great value.",
    "Does the job.",
    "Broke after a week.",
    "Would buy again.",
    "Not as described.",
    "Excellent quality.",
    "Fast delivery.",
    "Meh.",
)

Rows = list[tuple[Any, ...]]


def _customers(shape: Shape, rng: random.Random) -> Iterator[Rows]:
    start = DATA_END - DATA_SPAN - 365 * 86_400
    for lo in range(1, shape.customers + 1, _BATCH):
        yield [
            (i, f"user{i}@example.com", f"Customer {i}", start + int(rng.random() * DATA_SPAN))
            for i in range(lo, min(lo + _BATCH, shape.customers + 1))
        ]


def _products(shape: Shape, rng: random.Random) -> tuple[Rows, list[int]]:
    rows: Rows = []
    for i in range(1, shape.products + 1):
        price = 199 + int(rng.random() * 20_000)
        name = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)} {i}"
        rows.append((i, name, rng.choice(_CATEGORIES), price))
    return rows, [row[3] for row in rows]


def _orders_and_items(
    shape: Shape, prices: list[int], rng: random.Random
) -> Iterator[tuple[Rows, Rows]]:
    """Orders in id order (created_at rising with id, as in a real shop) with their items."""
    step = DATA_SPAN / shape.orders
    start = DATA_END - DATA_SPAN
    n_customers, n_products = shape.customers, shape.products
    rand = rng.random
    item_id = 0
    for lo in range(1, shape.orders + 1, _BATCH):
        orders: Rows = []
        items: Rows = []
        for oid in range(lo, min(lo + _BATCH, shape.orders + 1)):
            total = 0
            for _ in range(1 + int(rand() * 4)):
                item_id += 1
                pid = 1 + int(rand() * rand() * n_products)  # a few products sell far more
                qty = 1 + int(rand() * rand() * 3)
                price = prices[pid - 1]
                total += qty * price
                items.append((item_id, oid, pid, qty, price))
            created = start + int((oid - 1 + rand()) * step)
            address = (
                f"{1 + int(rand() * 9999)} {_STREETS[int(rand() * 10)]} Street, "
                f"Apt {1 + int(rand() * 99)}, {_CITIES[int(rand() * 8)]}"
            )
            orders.append(
                (
                    oid,
                    1 + int(rand() * n_customers),
                    _STATUSES[int(rand() * 20)],
                    total,
                    created,
                    address,
                )
            )
        yield orders, items


def _reviews(shape: Shape, rng: random.Random) -> Iterator[Rows]:
    start = DATA_END - DATA_SPAN
    rand = rng.random
    for lo in range(1, shape.reviews + 1, _BATCH):
        yield [
            (
                i,
                1 + int(rand() * rand() * shape.products),
                1 + int(rand() * shape.customers),
                1 + int(rand() * 5),
                _REVIEW_BODIES[int(rand() * 8)],
                start + int(rand() * DATA_SPAN),
            )
            for i in range(lo, min(lo + _BATCH, shape.reviews + 1))
        ]


def generate(shape: Shape, progress: ProgressFn = _noop) -> Iterator[tuple[str, Rows]]:
    """Every row of the shop as (table, batch) pairs, deterministically, reporting progress."""
    rng = random.Random(RANDOM_SEED)
    total = shape.customers + shape.products + shape.orders * 3.5 + shape.reviews
    done = 0.0

    def advance(rows: float, message: str) -> None:
        nonlocal done
        done += rows
        progress(min(done / total, 1.0) * 0.9, message)

    for batch in _customers(shape, rng):
        yield "customers", batch
        advance(len(batch), f"customers {batch[-1][0]:,}/{shape.customers:,}")
    products, prices = _products(shape, rng)
    yield "products", products
    advance(len(products), f"products {shape.products:,}")
    for orders, items in _orders_and_items(shape, prices, rng):
        yield "orders", orders
        yield "order_items", items
        advance(len(orders) + len(items), f"orders {orders[-1][0]:,}/{shape.orders:,}")
    for batch in _reviews(shape, rng):
        yield "reviews", batch
        advance(len(batch), f"reviews {batch[-1][0]:,}/{shape.reviews:,}")


# ---------------------------------------------------------------------------------------------
# Meta / reuse
# ---------------------------------------------------------------------------------------------


def _meta_rows(scale: int) -> list[tuple[str, str]]:
    return [
        ("schema_version", str(SCHEMA_VERSION)),
        ("scale", str(scale)),
        ("seed", str(RANDOM_SEED)),
        ("seeded_at", str(int(time.time()))),
    ]


def _matches(meta: dict[str, str] | None, scale: int) -> bool:
    return (
        meta is not None
        and meta.get("schema_version") == str(SCHEMA_VERSION)
        and meta.get("scale") == str(scale)
        and meta.get("seed") == str(RANDOM_SEED)
    )


def read_meta(location: str) -> dict[str, str] | None:
    """The ``meta`` table of a seeded shop, or None when there is no complete seeded shop."""
    if is_postgres(location):
        import psycopg

        with psycopg.connect(location, autocommit=True) as conn:
            found = conn.execute("SELECT to_regclass(%s)", (f"{PG_SCHEMA}.meta",)).fetchone()
            if found is None or found[0] is None:
                return None
            rows = conn.execute(f"SELECT key, value FROM {PG_SCHEMA}.meta").fetchall()
            return {str(k): str(v) for k, v in rows}
    path = Path(location)
    if not path.exists():
        return None
    try:
        lite = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            return {str(k): str(v) for k, v in lite.execute("SELECT key, value FROM meta")}
        finally:
            lite.close()
    except sqlite3.DatabaseError:
        return None


def seed(
    location: str,
    scale: int | None = None,
    progress: ProgressFn | None = None,
    *,
    force: bool = False,
) -> SeedResult:
    """Make ``location`` hold a shop of ``scale`` orders, reusing a matching one unless ``force``.

    ``location`` is a SQLite file path (its directory is created) or a PostgreSQL DSN.
    ``progress(fraction, message)`` is called as seeding advances (fraction from 0 to 1).
    """
    scale = default_scale(location) if scale is None else scale
    shape = Shape.for_scale(scale)
    report = progress or _noop
    started = time.monotonic()
    if not force and _matches(read_meta(location), scale):
        report(1.0, f"reusing the seeded shop ({scale:,} orders)")
        return SeedResult(location, shape, True, time.monotonic() - started)
    if is_postgres(location):
        _seed_postgres(location, scale, shape, report)
    else:
        _seed_sqlite(Path(location), scale, shape, report)
    report(1.0, f"seeded {scale:,} orders")
    return SeedResult(location, shape, False, time.monotonic() - started)


def _seed_sqlite(path: Path, scale: int, shape: Shape, progress: ProgressFn) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".seeding")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp, isolation_level=None)
    try:
        for pragma in (
            "journal_mode=OFF",
            "synchronous=OFF",
            "cache_size=-262144",
            "temp_store=MEMORY",
            "locking_mode=EXCLUSIVE",
        ):
            conn.execute(f"PRAGMA {pragma}")
        conn.execute("BEGIN")
        for ddl in TABLES.values():
            conn.execute(ddl)
        inserts = {
            table: f"INSERT INTO {table} VALUES ({', '.join('?' * len(cols))})"
            for table, cols in COLUMNS.items()
        }
        for table, rows in generate(shape, progress):
            conn.executemany(inserts[table], rows)
        for i, ddl in enumerate(INDEXES):
            progress(0.9 + 0.08 * i / len(INDEXES), f"index {ddl.split()[-3]}")
            conn.execute(ddl)
        progress(0.98, "analyze")
        conn.execute("ANALYZE")
        conn.executemany("INSERT INTO meta VALUES (?, ?)", _meta_rows(scale))
        conn.execute("COMMIT")
    finally:
        conn.close()
    os.replace(tmp, path)
    for suffix in ("-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def _seed_postgres(dsn: str, scale: int, shape: Shape, progress: ProgressFn) -> None:
    import psycopg

    with psycopg.connect(dsn) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE")
        conn.execute(f"CREATE SCHEMA {PG_SCHEMA}")
        conn.execute(f"SET LOCAL search_path TO {PG_SCHEMA}")
        for ddl in TABLES.values():
            conn.execute(ddl)
        with conn.cursor() as cur:
            for table, rows in generate(shape, progress):
                columns = ", ".join(COLUMNS[table])
                with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
        for i, ddl in enumerate(INDEXES):
            progress(0.9 + 0.08 * i / len(INDEXES), f"index {ddl.split()[-3]}")
            conn.execute(ddl)
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO meta VALUES (%s, %s)", _meta_rows(scale))
        conn.commit()
    progress(0.98, "vacuum analyze")
    with psycopg.connect(dsn, autocommit=True) as conn:
        for table in DATA_TABLES:
            conn.execute(f"VACUUM ANALYZE {PG_SCHEMA}.{table}")


def table_counts(location: str) -> dict[str, int]:
    """Rows per data table (for tests and the demo's progress output)."""
    from querywatch.demo.shop.db import connect

    conn = connect(location)
    try:
        cur = conn.cursor()
        counts = {}
        for table in DATA_TABLES:
            cur.execute(f"SELECT count(*) FROM {table}")
            counts[table] = int(cur.fetchone()[0])
        cur.close()
        return counts
    finally:
        conn.close()
