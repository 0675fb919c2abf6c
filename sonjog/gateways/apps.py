from django.apps import AppConfig


class GatewaysConfig(AppConfig):
    name = "sonjog.gateways"
    label = "gateways"
    verbose_name = "Payment gateways"
