"""A small Flask shop watched by querywatch: customers, their orders, and one N+1.

``GET /customers`` lists every customer, then reads each one's orders one query at a time (the
lazy relationship, an N+1); ``GET /customers/fixed`` returns the same page with the orders loaded
in one more query. ``GET /orders/<id>`` shows one order. Run it with ``flask --app flask_shop run``
(see README.md).
"""

from __future__ import annotations

import os

from flask import Flask, abort
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import ForeignKey, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, selectinload

from querywatch.contrib.flask import QueryWatch


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class Customer(db.Model):  # type: ignore[name-defined,misc]
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    orders: Mapped[list[Order]] = relationship(back_populates="customer", order_by="Order.id")


class Order(db.Model):  # type: ignore[name-defined,misc]
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    total_cents: Mapped[int]
    customer: Mapped[Customer] = relationship(back_populates="orders")


def create_app(database_url: str | None = None, **config: object) -> Flask:
    """The shop; ``config`` goes into ``app.config`` (e.g. ``QUERYWATCH_STORE="qw.sqlite3"``)."""
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url or os.environ.get(
        "SHOP_DATABASE_URL", "sqlite:///flask_shop.db"
    )
    app.config.update(config)
    db.init_app(app)
    QueryWatch(app)  # querywatch: every request by its URL rule, every statement of db.engine

    @app.get("/customers")
    def list_customers() -> list[dict[str, object]]:
        page = []
        for customer in db.session.scalars(select(Customer).order_by(Customer.id)):
            orders = [order.id for order in customer.orders]  # N+1: one SELECT per customer
            page.append({"id": customer.id, "name": customer.name, "orders": orders})
        return page

    @app.get("/customers/fixed")
    def list_customers_fixed() -> list[dict[str, object]]:
        query = select(Customer).options(selectinload(Customer.orders)).order_by(Customer.id)
        page = []
        for customer in db.session.scalars(query):
            orders = [order.id for order in customer.orders]
            page.append({"id": customer.id, "name": customer.name, "orders": orders})
        return page

    @app.get("/orders/<int:order_id>")
    def show_order(order_id: int) -> dict[str, object]:
        order = db.session.get(Order, order_id)
        if order is None:
            abort(404)
        return {"id": order.id, "customer": order.customer.name, "total_cents": order.total_cents}

    @app.cli.command("seed")
    def seed_command() -> None:
        """Create the tables and a few customers with orders."""
        seed()

    return app


def seed(customers: int = 8, orders: int = 24) -> None:
    """Create the tables and ``orders`` orders spread over ``customers`` customers (needs the
    app context)."""
    db.create_all()
    db.session.add_all(Customer(id=i, name=f"customer-{i}") for i in range(1, customers + 1))
    db.session.add_all(
        Order(id=i, customer_id=1 + i % customers, total_cents=100 * i)
        for i in range(1, orders + 1)
    )
    db.session.commit()
