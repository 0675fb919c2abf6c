from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "sonjog.core"
    label = "core"
    verbose_name = "Core"
