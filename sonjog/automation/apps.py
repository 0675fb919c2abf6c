from django.apps import AppConfig


class AutomationConfig(AppConfig):
    name = "sonjog.automation"
    label = "automation"
    verbose_name = "Automation"
