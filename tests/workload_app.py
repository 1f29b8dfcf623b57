"""A tiny application whose statements the instrumentation tests count and locate.

Each statement is issued on a line carrying a ``# qw:<name>`` marker; the tests find the expected
call-site lines by scanning this file for the markers, so editing the file cannot break them.
``ph`` is the driver's placeholder (``?`` for sqlite3, ``%s`` for psycopg).
"""

from __future__ import annotations

from typing import Any

CREATE = "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER NOT NULL)"
BAD = "SELECT no_such_column FROM items"
SA_INSERT = "INSERT INTO items (id, name, qty) VALUES (:id, :name, :qty)"


def insert_sql(ph: str) -> str:
    return f"INSERT INTO items (id, name, qty) VALUES ({ph}, {ph}, {ph})"


def point_sql(ph: str) -> str:
    return f"SELECT name FROM items WHERE id = {ph}"


def update_sql(ph: str) -> str:
    return f"UPDATE items SET qty = qty + 1 WHERE qty = {ph}"


def create_table(conn: Any) -> None:
    conn.execute(CREATE)  # qw:create


def insert_items(conn: Any, ph: str, n: int) -> None:
    cur = conn.cursor()
    cur.executemany(insert_sql(ph), [(i, f"item-{i}", i % 7) for i in range(n)])  # qw:insert-many
    conn.commit()


def point_select(conn: Any, ph: str, item_id: int) -> Any:
    return conn.execute(point_sql(ph), (item_id,)).fetchone()  # qw:point-select


def bump_qty(conn: Any, ph: str, qty: int) -> int:
    cur = conn.cursor()
    cur.execute(update_sql(ph), (qty,))  # qw:update
    return int(cur.rowcount)


def bad_query(conn: Any) -> None:
    conn.execute(BAD)  # qw:error


def run(conn: Any, ph: str, *, items: int, selects: int) -> None:
    """The whole workload: create, insert ``items``, ``selects`` point selects, an update."""
    create_table(conn)
    insert_items(conn, ph, items)
    for i in range(selects):
        point_select(conn, ph, i % items)
    bump_qty(conn, ph, 3)
    conn.commit()


async def async_point_select(aconn: Any, item_id: int) -> Any:
    cur = await aconn.execute(point_sql("%s"), (item_id,))  # qw:async-point-select
    return await cur.fetchone()


def sa_run(engine: Any, *, items: int, selects: int) -> None:
    """The workload through SQLAlchemy Core (named parameters)."""
    from sqlalchemy import text

    with engine.begin() as c:
        c.execute(text(CREATE))  # qw:sa-create
        rows = [{"id": i, "name": f"item-{i}", "qty": i % 7} for i in range(items)]
        c.execute(text(SA_INSERT), rows)  # qw:sa-insert
        for i in range(selects):
            c.execute(text(point_sql(":id")), {"id": i % items}).fetchone()  # qw:sa-point-select


async def sa_async_point_selects(engine: Any, n: int) -> None:
    """Point selects through a SQLAlchemy AsyncEngine (the ORM side runs in a greenlet)."""
    from sqlalchemy import text

    async with engine.connect() as c:
        for i in range(n):
            await c.execute(text(point_sql(":id")), {"id": i})  # qw:sa-async-point-select


def sa_bad_query(engine: Any) -> None:
    from sqlalchemy import text

    with engine.connect() as c:
        c.execute(text(BAD))  # qw:sa-error
