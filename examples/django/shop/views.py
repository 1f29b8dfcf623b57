"""The shop's pages: one with an N+1 (order_list_slow) beside its fix (order_list)."""

import threading

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404

from shop.models import Customer, Order


def _lines(lines):
    return HttpResponse("\n".join(lines), content_type="text/plain")


def order_list_slow(request):
    """N+1: each order's customer is loaded by its own query."""
    orders = Order.objects.order_by("id")[:100]
    return _lines(f"{o.id} {o.customer.name} {o.total_cents}" for o in orders)  # N+1 here


def order_list(request):
    """The fix: the customers come in the same query (a JOIN)."""
    orders = Order.objects.select_related("customer").order_by("id")[:100]
    return _lines(f"{o.id} {o.customer.name} {o.total_cents}" for o in orders)  # one query


def customer_list(request):
    """N+1 on the reverse side: each customer's orders by their own query."""
    customers = Customer.objects.order_by("id")
    return _lines(f"{c.name}: {len(c.orders.all())} orders" for c in customers)  # N+1 here


def customer_detail(request, pk):
    customer = get_object_or_404(Customer, pk=pk)
    return _lines([customer.name])


@login_required
def my_orders(request):
    orders = Order.objects.filter(customer__email=request.user.email).order_by("id")
    return _lines(str(o.id) for o in orders)


def report(request):
    """Counts orders on a worker thread (its own database connection)."""
    result = {}

    def count():
        try:
            result["orders"] = Order.objects.count()  # on the worker's connection
        finally:
            connection.close()

    worker = threading.Thread(target=count)
    worker.start()
    worker.join()
    return JsonResponse(result)
