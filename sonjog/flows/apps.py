from django.apps import AppConfig


class FlowsConfig(AppConfig):
    name = "sonjog.flows"
    label = "flows"
    verbose_name = "Flows"
