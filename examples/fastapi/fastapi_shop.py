"""A small FastAPI shop watched by querywatch: customers, their orders, and one N+1.

The ORM runs on SQLAlchemy's asyncio engine, the totals page on a psycopg async pool.
``GET /customers`` lists every customer, then awaits each one's orders one query at a time (an
N+1); ``GET /customers/fixed`` returns the same page with the orders loaded in one more query.
Run it with ``uvicorn --factory fastapi_shop:create_app`` (see README.md).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import ForeignKey, select
from sqlalchemy.ext.asyncio import AsyncAttrs, AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, selectinload

from querywatch.contrib.fastapi import QueryWatch


class Base(AsyncAttrs, DeclarativeBase):
    pass


class Customer(Base):
    __tablename__ = "customer"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    orders: Mapped[list[Order]] = relationship(back_populates="customer", order_by="Order.id")


class Order(Base):
    __tablename__ = "order"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    total_cents: Mapped[int]
    customer: Mapped[Customer] = relationship(back_populates="orders")


def create_app(database_url: str | None = None, **querywatch_options: Any) -> FastAPI:
    """The shop on a PostgreSQL URL (``postgresql://...``, default ``$SHOP_DATABASE_URL``);
    ``querywatch_options`` go to ``QueryWatch`` (e.g. ``store="qw.sqlite3"``)."""
    url = database_url or os.environ.get("SHOP_DATABASE_URL", "postgresql://localhost/shop")
    engine = create_async_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await pool.open()
        yield
        await pool.close()
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)
    qw = QueryWatch(app, **querywatch_options)  # querywatch: every request by its route
    qw.instrument(engine)  # querywatch: every statement of the ORM
    pool = AsyncConnectionPool(url, open=False, configure=qw.configure)  # and of the pool
    app.state.querywatch, app.state.engine = qw, engine

    @app.get("/customers")
    async def list_customers() -> list[dict[str, Any]]:
        async with sessions() as session:
            page = []
            for customer in await session.scalars(select(Customer).order_by(Customer.id)):
                orders = await customer.awaitable_attrs.orders  # N+1: one SELECT per customer
                page.append({"id": customer.id, "name": customer.name, "orders": len(orders)})
            return page

    @app.get("/customers/fixed")
    async def list_customers_fixed() -> list[dict[str, Any]]:
        query = select(Customer).options(selectinload(Customer.orders)).order_by(Customer.id)
        async with sessions() as session:
            page = []
            for customer in await session.scalars(query):
                page.append(
                    {"id": customer.id, "name": customer.name, "orders": len(customer.orders)}
                )
            return page

    @app.get("/orders/{order_id}")
    async def show_order(order_id: int) -> dict[str, Any]:
        async with sessions() as session:
            order = await session.get(Order, order_id)
            if order is None:
                raise HTTPException(404, "no such order")
            return {"id": order.id, "total_cents": order.total_cents}

    @app.get("/customers/{customer_id}/total")
    async def customer_total(customer_id: int) -> dict[str, int]:
        async with pool.connection() as conn:
            cur = await conn.execute(
                'SELECT coalesce(sum(total_cents), 0) FROM "order" WHERE customer_id = %s',
                (customer_id,),
            )
            row = await cur.fetchone()
        return {"customer_id": customer_id, "total_cents": int(row[0]) if row else 0}

    return app


async def seed(engine: AsyncEngine, customers: int = 8, orders: int = 24) -> None:
    """Create the tables and ``orders`` orders spread over ``customers`` customers."""
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    async with async_sessionmaker(engine)() as session:
        session.add_all(Customer(id=i, name=f"customer-{i}") for i in range(1, customers + 1))
        await session.flush()
        session.add_all(
            Order(id=i, customer_id=1 + i % customers, total_cents=100 * i)
            for i in range(1, orders + 1)
        )
        await session.commit()
