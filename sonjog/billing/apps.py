from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "sonjog.billing"
    label = "billing"
    verbose_name = "Billing"
