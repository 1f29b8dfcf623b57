"""Celery tasks of the Flask shop, watched by querywatch: each run is the route ``task:<name>``.

Set up the way Flask's documentation sets up Celery (tasks run inside the app context), plus one
querywatch line that shares the Flask extension's recorder. Run a worker with
``celery -A make_celery worker`` (see README.md).
"""

from __future__ import annotations

import os

from celery import Celery, Task, shared_task
from flask import Flask
from flask_shop import Customer, create_app, db
from sqlalchemy import select, text

from querywatch.contrib.celery import QueryWatch


def celery_init_app(app: Flask) -> Celery:
    class FlaskTask(Task):  # type: ignore[misc]
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(app.config["CELERY"])
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    # querywatch: each task run is the route task:<name>, recorded by the Flask app's recorder
    qw = QueryWatch(celery_app, recorder=app.extensions["querywatch"].recorder)
    app.extensions["querywatch.celery"] = qw
    return celery_app


@shared_task(name="shop.customer_report")
def customer_report() -> dict[str, int]:
    """Orders per customer, one query per customer (an N+1)."""
    report = {}
    for customer in db.session.scalars(select(Customer).order_by(Customer.id)):
        report[customer.name] = len(customer.orders)  # N+1: one SELECT per customer
    return report


@shared_task(name="shop.slow_total")
def slow_total(pause_s: float) -> int:
    """The revenue, behind a slow statement (``pg_sleep``) standing in for a missing index."""
    db.session.execute(text("SELECT pg_sleep(:pause)"), {"pause": pause_s})
    return int(db.session.scalar(text('SELECT coalesce(sum(total_cents), 0) FROM "order"')))


@shared_task(name="shop.broken_export")
def broken_export() -> None:
    """Fails after one statement: the run counts as an error of ``task:shop.broken_export``."""
    db.session.execute(text("SELECT count(*) FROM customer"))
    raise RuntimeError("export target unreachable")


def create_worker_app() -> Celery:
    """The shop's Flask app and its Celery app, as ``celery -A make_celery worker`` loads them."""
    flask_app = create_app(
        CELERY={
            "broker_url": os.environ.get("SHOP_BROKER_URL", "redis://127.0.0.1:6379/0"),
            "result_backend": os.environ.get("SHOP_RESULT_BACKEND", "redis://127.0.0.1:6379/0"),
        }
    )
    return celery_init_app(flask_app)
