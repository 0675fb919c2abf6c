from django.apps import AppConfig


class OperatorsConfig(AppConfig):
    name = "sonjog.operators"
    label = "operators"
    verbose_name = "Operators"
