from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "sonjog.demo"
    label = "demo"
    verbose_name = "Demo"
