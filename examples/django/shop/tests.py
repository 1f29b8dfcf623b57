"""The shop's tests, for pytest-django (`pytest --querywatch`) and `manage.py test --querywatch`."""

from django.test import TestCase
from django.urls import reverse

from shop.models import Customer, Order


class ShopPagesTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        customers = Customer.objects.bulk_create(
            Customer(name=f"customer {i}", email=f"c{i}@example.com") for i in range(12)
        )
        Order.objects.bulk_create(
            Order(customer=customers[i % len(customers)], total_cents=100 * i) for i in range(24)
        )

    def test_order_list_slow(self):
        response = self.client.get(reverse("shop:order-list-slow"))
        self.assertEqual(response.status_code, 200)
        self.assertEqual(len(response.content.splitlines()), 24)

    def test_order_list(self):
        response = self.client.get(reverse("shop:order-list"))
        self.assertEqual(len(response.content.splitlines()), 24)

    def test_customer_list(self):
        response = self.client.get(reverse("shop:customer-list"))
        self.assertEqual(len(response.content.splitlines()), 12)
