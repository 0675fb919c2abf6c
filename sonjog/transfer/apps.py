from django.apps import AppConfig


class TransferConfig(AppConfig):
    name = "sonjog.transfer"
    label = "transfer"
    verbose_name = "Bringing an ISP in and out"
