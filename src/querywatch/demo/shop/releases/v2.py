"""Shop release v2 (the bad one): a non-sargable hot query and an N+1 home page.

Diff ``v1_1.py`` (the release before it) against this file to see what the bad deploy
changed. Queries use ``?`` placeholders; ``Db`` adapts them for PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from querywatch.demo.shop.db import Db

VERSION = "v2"

Page = dict[str, Any]


def home(db: Db) -> Page:
    """The landing page: a handful of products with their review counts (one count each)."""
    rows = db.all("SELECT id, name, price_cents FROM products ORDER BY id LIMIT 12")
    products = []
    for r in rows:
        reviews = db.one("SELECT count(*) FROM reviews WHERE product_id = ?", (r[0],))
        products.append(
            {"id": r[0], "name": r[1], "price_cents": r[2], "reviews": reviews[0] if reviews else 0}
        )
    return {"products": products}


def product(db: Db, product_id: int) -> Page | None:
    """A product with its rating and latest reviews."""
    row = db.one("SELECT id, name, category, price_cents FROM products WHERE id = ?", (product_id,))
    if row is None:
        return None
    stats = db.one("SELECT count(*), avg(rating) FROM reviews WHERE product_id = ?", (product_id,))
    reviews = db.all(
        "SELECT rating, body, created_at FROM reviews WHERE product_id = ?"
        " ORDER BY created_at DESC LIMIT 5",
        (product_id,),
    )
    return {
        "id": row[0],
        "name": row[1],
        "category": row[2],
        "price_cents": row[3],
        "reviews": stats[0] if stats else 0,
        "rating": round(float(stats[1]), 2) if stats and stats[1] is not None else None,
        "latest_reviews": [{"rating": r[0], "body": r[1], "created_at": r[2]} for r in reviews],
    }


def customer_orders(db: Db, customer_id: str) -> Page:
    """The hot page: a customer's latest orders (ids now compared as text, as they arrive)."""
    rows = db.all(
        "SELECT id, status, total_cents, created_at FROM orders"
        " WHERE CAST(customer_id AS TEXT) = ?"
        " ORDER BY created_at DESC LIMIT 20",
        (customer_id,),
    )
    return {
        "customer_id": int(customer_id),
        "orders": [
            {"id": r[0], "status": r[1], "total_cents": r[2], "created_at": r[3]} for r in rows
        ],
    }


def order(db: Db, order_id: int) -> Page | None:
    """One order with its items and their product names."""
    head = db.one(
        "SELECT id, customer_id, status, total_cents, created_at FROM orders WHERE id = ?",
        (order_id,),
    )
    if head is None:
        return None
    rows = db.all(
        "SELECT oi.product_id, p.name, oi.quantity, oi.price_cents"
        " FROM order_items oi JOIN products p ON p.id = oi.product_id"
        " WHERE oi.order_id = ? ORDER BY oi.id",
        (order_id,),
    )
    items = [
        {"product_id": r[0], "name": r[1], "quantity": r[2], "price_cents": r[3]} for r in rows
    ]
    return {
        "id": head[0],
        "customer_id": head[1],
        "status": head[2],
        "total_cents": head[3],
        "created_at": head[4],
        "items": items,
    }


def search(db: Db, q: str) -> Page:
    """Products whose name contains ``q``."""
    rows = db.all(
        "SELECT id, name, price_cents FROM products WHERE name LIKE ? ORDER BY id LIMIT 20",
        (f"%{q}%",),
    )
    return {"q": q, "products": [{"id": r[0], "name": r[1], "price_cents": r[2]} for r in rows]}
