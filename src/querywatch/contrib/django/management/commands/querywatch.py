"""``manage.py querywatch <command> [options]``: the querywatch CLI with the project's database.

Runs ``querywatch <command> …`` in this process, with two defaults taken from the project: the
database to watch or EXPLAIN on (``dsn``: ``settings.QUERYWATCH['dsn']``, else the ``default``
database when it is PostgreSQL) and the store (``settings.QUERYWATCH['store']``). They are given
the way the CLI reads settings, ``QUERYWATCH_DSN`` and ``QUERYWATCH_STORE``, so a ``--dsn`` or
``--store`` on the command line (or the variable already set) still wins. The app's capture is
stopped first: the command's own work is not the project's traffic.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from django.core.management.base import BaseCommand

from querywatch.config import setting
from querywatch.contrib.django.conf import read_settings


def database_dsn(settings_dict: Mapping[str, Any]) -> str | None:
    """A libpq connection string for a Django PostgreSQL database, or None for other engines."""
    if "postgresql" not in str(settings_dict.get("ENGINE", "")):
        return None
    from psycopg.conninfo import make_conninfo

    params = {
        "dbname": settings_dict.get("NAME"),
        "user": settings_dict.get("USER"),
        "password": settings_dict.get("PASSWORD"),
        "host": settings_dict.get("HOST"),
        "port": str(settings_dict["PORT"]) if settings_dict.get("PORT") else None,
    }
    return make_conninfo("", **{k: v for k, v in params.items() if v})


def project_defaults() -> dict[str, str]:
    """``QUERYWATCH_DSN`` / ``QUERYWATCH_STORE`` values from the project's settings."""
    from django.conf import settings
    from django.db import connections

    config = read_settings().config
    out: dict[str, str] = {}
    dsn = config["dsn"]
    if dsn is None and "default" in settings.DATABASES:
        dsn = database_dsn(connections["default"].settings_dict)
    if dsn:
        out[setting("dsn").env] = str(dsn)
    if config["store"]:
        out[setting("store").env] = str(config["store"])
    return out


class Command(BaseCommand):  # type: ignore[misc]  # Django ships no type hints
    help = "Run a querywatch command with this project's database and store (querywatch --help)."

    def run_from_argv(self, argv: list[str]) -> None:
        # Every argument is querywatch's (its own --help too): Django's parser would refuse them.
        self.execute_querywatch(argv[2:])

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("args", nargs="*", help="querywatch's command and its options")

    def handle(self, *args: str, **options: Any) -> None:
        self.execute_querywatch(list(args))

    def execute_querywatch(self, args: list[str]) -> None:
        from querywatch.cli import main
        from querywatch.contrib.django import capture

        capture.stop()  # the CLI's own work is not the project's traffic
        for name, value in project_defaults().items():
            if not os.environ.get(name):
                os.environ[name] = value
        main(args)
