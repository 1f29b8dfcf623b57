"""The shop's tables and indexes, written once for SQLite and PostgreSQL.

Timestamps are integer epoch seconds on both databases so the same release code and parameters
work unchanged. Indexes are created after the bulk load (much faster), which is why they are a
separate list. On PostgreSQL everything lives in the ``qw_shop`` schema (see ``db.PG_SCHEMA``).
"""

from __future__ import annotations

#: Bump whenever a table, column or index changes: a seeded database with another version is
#: rebuilt instead of reused.
SCHEMA_VERSION = 1

TABLES: dict[str, str] = {
    "meta": "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "customers": (
        "CREATE TABLE customers (id BIGINT PRIMARY KEY, email TEXT NOT NULL, name TEXT NOT NULL,"
        " created_at BIGINT NOT NULL)"
    ),
    "products": (
        "CREATE TABLE products (id BIGINT PRIMARY KEY, name TEXT NOT NULL, category TEXT NOT NULL,"
        " price_cents INTEGER NOT NULL)"
    ),
    "orders": (
        "CREATE TABLE orders (id BIGINT PRIMARY KEY, customer_id BIGINT NOT NULL,"
        " status TEXT NOT NULL, total_cents INTEGER NOT NULL, created_at BIGINT NOT NULL,"
        " shipping_address TEXT NOT NULL)"
    ),
    "order_items": (
        "CREATE TABLE order_items (id BIGINT PRIMARY KEY, order_id BIGINT NOT NULL,"
        " product_id BIGINT NOT NULL, quantity INTEGER NOT NULL, price_cents INTEGER NOT NULL)"
    ),
    "reviews": (
        "CREATE TABLE reviews (id BIGINT PRIMARY KEY, product_id BIGINT NOT NULL,"
        " customer_id BIGINT NOT NULL, rating INTEGER NOT NULL, body TEXT NOT NULL,"
        " created_at BIGINT NOT NULL)"
    ),
}

#: Column order of each data table, as the seeder produces rows.
COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("id", "email", "name", "created_at"),
    "products": ("id", "name", "category", "price_cents"),
    "orders": ("id", "customer_id", "status", "total_cents", "created_at", "shipping_address"),
    "order_items": ("id", "order_id", "product_id", "quantity", "price_cents"),
    "reviews": ("id", "product_id", "customer_id", "rating", "body", "created_at"),
}

INDEXES: tuple[str, ...] = (
    "CREATE UNIQUE INDEX customers_email ON customers (email)",
    "CREATE INDEX products_category ON products (category)",
    "CREATE INDEX orders_customer_created ON orders (customer_id, created_at)",
    "CREATE INDEX orders_created ON orders (created_at)",
    "CREATE INDEX order_items_order ON order_items (order_id)",
    "CREATE INDEX reviews_product ON reviews (product_id, created_at)",
)

DATA_TABLES: tuple[str, ...] = ("customers", "products", "orders", "order_items", "reviews")
