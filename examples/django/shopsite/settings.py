"""Settings of the example shop: querywatch is the app and the first middleware line.

The database is ``$DATABASE_URL`` (``postgresql://user:password@host:port/name``), else a SQLite
file beside this project.
"""

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-shop-not-a-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "querywatch.contrib.django",  # querywatch: capture every query
    "shop",
]

MIDDLEWARE = [
    "querywatch.contrib.django.middleware.QueryWatchMiddleware",  # querywatch: routes, users
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]

QUERYWATCH = {
    "release": os.environ.get("SHOP_RELEASE", "shop-1.0"),
    "store": str(BASE_DIR / ".querywatch" / "store.sqlite3"),
    "flush_interval": 2,
}

# `manage.py test --querywatch` runs the CI gate (`pytest --querywatch` needs nothing here).
TEST_RUNNER = "querywatch.contrib.django.runner.QueryWatchTestRunner"

ROOT_URLCONF = "shopsite.urls"
WSGI_APPLICATION = "shopsite.wsgi.application"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
TEMPLATES: list[dict[str, object]] = []


def _database(url: str | None) -> dict[str, object]:
    if not url:
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "shop.sqlite3"}
    parts = urlsplit(url)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": parts.port or "",
    }


DATABASES = {"default": _database(os.environ.get("DATABASE_URL"))}
