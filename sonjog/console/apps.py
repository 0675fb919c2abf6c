from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "sonjog.console"
    label = "console"
    verbose_name = "Console"
