#!/usr/bin/env python
"""Send the shop a little traffic and write what querywatch captured to its store.

    python manage.py migrate && python traffic.py && querywatch top --store .querywatch/store.sqlite3

Seeds customers and orders when there are none, signs a user in, requests every page through
Django's test client (``--rounds`` times each), one page over real HTTP (a WSGI server on
loopback), then flushes querywatch and prints what it sent as JSON.
"""

import argparse
import json
import os
import threading
import urllib.request
from wsgiref.simple_server import WSGIRequestHandler, make_server

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shopsite.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.test import Client  # noqa: E402

from querywatch.contrib.django import capture  # noqa: E402
from shop.models import Customer, Order  # noqa: E402

PAGES = ["/orders/slow/", "/orders/", "/customers/", "/me/orders/", "/report/"]


class _Quiet(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


def seed(customers=10, orders=20):
    if not Customer.objects.exists():
        made = Customer.objects.bulk_create(
            Customer(name=f"customer {i}", email=f"c{i}@example.com") for i in range(customers)
        )
        Order.objects.bulk_create(
            Order(customer=made[i % customers], total_cents=100 * i) for i in range(orders)
        )
    user = User.objects.filter(username="alice").first()
    if user is None:
        user = User.objects.create_user("alice", "c0@example.com", "alice-password")
    return user


def over_http(path):
    server = make_server("127.0.0.1", 0, get_wsgi_application(), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}{path}"
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status
    finally:
        server.shutdown()
        server.server_close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    user = seed()
    client = Client()
    client.force_login(user)
    statuses = {}
    for _ in range(args.rounds):
        for page in PAGES:
            statuses[page] = client.get(page).status_code
    http_status = over_http("/orders/")
    running = capture.current()
    flushed = running is not None and running.flush()
    print(
        json.dumps(
            {
                "user_pk": user.pk,
                "rounds": args.rounds,
                "statuses": statuses,
                "http_status": http_status,
                "orders": Order.objects.count(),
                "flushed": flushed,
            }
        )
    )


if __name__ == "__main__":
    main()
