from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "sonjog.portal"
    label = "portal"
    verbose_name = "Subscriber portal"
