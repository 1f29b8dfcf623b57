from django.urls import path

from shop import views

app_name = "shop"
urlpatterns = [
    path("orders/slow/", views.order_list_slow, name="order-list-slow"),
    path("orders/", views.order_list, name="order-list"),
    path("customers/", views.customer_list, name="customer-list"),
    path("customers/<int:pk>/", views.customer_detail, name="customer-detail"),
    path("me/orders/", views.my_orders, name="my-orders"),
    path("report/", views.report, name="report"),
]
