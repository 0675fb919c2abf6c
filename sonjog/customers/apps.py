from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "sonjog.customers"
    label = "customers"
    verbose_name = "Subscribers"
