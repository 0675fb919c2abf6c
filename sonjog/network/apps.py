from django.apps import AppConfig


class NetworkConfig(AppConfig):
    name = "sonjog.network"
    label = "network"
    verbose_name = "Network"
